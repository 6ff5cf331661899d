package canary

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Defaults of a Spec's zero fields.
var (
	DefaultSteps = []float64{1, 5, 25, 50, 100}
)

const (
	DefaultStepAfter      = 5 * time.Minute
	DefaultMinRequests    = 200
	DefaultErrorPoints    = 1.0
	DefaultTTFTFactor     = 1.5
	DefaultTTFTSlack      = 25 * time.Millisecond
	DefaultTokensFactor   = 0.67
	DefaultBadReplyPoints = 2.0
	DefaultShortReply     = 16
)

// ErrBadSpec is wrapped by every Spec validation error.
var ErrBadSpec = errors.New("canary: bad spec")

// Spec is one rollout: which version goes out against which, by which
// steps and how it is judged. Zero fields take the defaults above.
type Spec struct {
	// Version is the canary: instances with metadata "version" equal to it.
	// Required.
	Version string `yaml:"version" json:"version"`
	// Baseline is the version it is judged against. Required; not Version.
	Baseline string `yaml:"baseline" json:"baseline"`
	// Steps are the canary's shares of the route's traffic, in percent,
	// increasing, each in (0, 100], the first below 100. Default [1, 5,
	// 25, 50, 100]. Passing the last step below 100 % promotes the canary
	// (share 100 %): at 100 % the baseline would have no traffic to be
	// compared with.
	Steps []float64 `yaml:"steps" json:"steps"`
	// StepAfter is how long each step lasts at least before it is passed.
	// Default 5m.
	StepAfter time.Duration `yaml:"step_after" json:"step_after"`
	// MinRequests is how many finished requests both the canary and the
	// baseline need in a step's window before it is judged. Default 200.
	MinRequests int `yaml:"min_requests" json:"min_requests"`
	// Thresholds say when the canary is worse than the baseline.
	Thresholds Thresholds `yaml:"thresholds" json:"thresholds"`
}

// Thresholds bound how much worse than the baseline the canary may be
// over a step's window. Zero fields take the defaults.
type Thresholds struct {
	// ErrorPoints: the canary's error ratio may exceed the baseline's by
	// at most this many percentage points. Default 1.
	ErrorPoints float64 `yaml:"error_points" json:"error_points"`
	// TTFTFactor: the canary's time-to-first-token p95 may be at most this
	// times the baseline's. Default 1.5.
	TTFTFactor float64 `yaml:"ttft_p95_factor" json:"ttft_p95_factor"`
	// TTFTSlack: a TTFT p95 within this much of the baseline's is never a
	// breach, so that a few milliseconds of noise over a fast baseline do
	// not abort a rollout. Default 25ms.
	TTFTSlack time.Duration `yaml:"ttft_slack" json:"ttft_slack"`
	// TokensFactor: the canary's output tokens per second must be at least
	// this times the baseline's. Default 0.67.
	TokensFactor float64 `yaml:"tokens_per_second_factor" json:"tokens_per_second_factor"`
	// BadReplyPoints: the canary's share of bad replies (no output tokens,
	// or finish_reason "length" below ShortReply tokens) may exceed the
	// baseline's by at most this many percentage points. Default 2.
	BadReplyPoints float64 `yaml:"bad_reply_points" json:"bad_reply_points"`
	// ShortReply is the output length, in tokens, below which a reply cut
	// by finish_reason "length" is suspicious. Default 16.
	ShortReply int `yaml:"short_reply_tokens" json:"short_reply_tokens"`
}

// WithDefaults returns s with its zero fields filled.
func (s Spec) WithDefaults() Spec {
	if len(s.Steps) == 0 {
		s.Steps = slices.Clone(DefaultSteps)
	}
	if s.StepAfter == 0 {
		s.StepAfter = DefaultStepAfter
	}
	if s.MinRequests == 0 {
		s.MinRequests = DefaultMinRequests
	}
	t := &s.Thresholds
	if t.ErrorPoints == 0 {
		t.ErrorPoints = DefaultErrorPoints
	}
	if t.TTFTFactor == 0 {
		t.TTFTFactor = DefaultTTFTFactor
	}
	if t.TTFTSlack == 0 {
		t.TTFTSlack = DefaultTTFTSlack
	}
	if t.TokensFactor == 0 {
		t.TokensFactor = DefaultTokensFactor
	}
	if t.BadReplyPoints == 0 {
		t.BadReplyPoints = DefaultBadReplyPoints
	}
	if t.ShortReply == 0 {
		t.ShortReply = DefaultShortReply
	}
	return s
}

// Validate reports the first problem of s (defaults filled), naming the
// field.
func (s Spec) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadSpec, fmt.Sprintf(format, args...))
	}
	s = s.WithDefaults()
	switch {
	case s.Version == "":
		return bad("version is empty")
	case s.Baseline == "":
		return bad("baseline is empty")
	case s.Baseline == s.Version:
		return bad("baseline %q is the canary version itself", s.Baseline)
	case s.StepAfter < 0:
		return bad("step_after %v is negative", s.StepAfter)
	case s.MinRequests < 0:
		return bad("min_requests %d is negative", s.MinRequests)
	case len(s.Steps) > 100:
		return bad("%d steps, at most 100", len(s.Steps))
	case s.Steps[0] >= 100:
		return bad("steps[0] = %v: the first step must be below 100 %%, so that the baseline has traffic to compare with", s.Steps[0])
	}
	for i, p := range s.Steps {
		if !(p > 0 && p <= 100) {
			return bad("steps[%d] = %v, want a percentage in (0, 100]", i, p)
		}
		if i > 0 && p <= s.Steps[i-1] {
			return bad("steps[%d] = %v is not above steps[%d] = %v", i, p, i-1, s.Steps[i-1])
		}
	}
	t := s.Thresholds
	switch {
	case t.ErrorPoints < 0 || t.BadReplyPoints < 0:
		return bad("thresholds: error_points and bad_reply_points must be ≥ 0")
	case t.TTFTFactor < 1:
		return bad("thresholds.ttft_p95_factor %v, want ≥ 1", t.TTFTFactor)
	case t.TokensFactor < 0 || t.TokensFactor > 1:
		return bad("thresholds.tokens_per_second_factor %v, want in [0, 1]", t.TokensFactor)
	case t.TTFTSlack < 0 || t.ShortReply < 0:
		return bad("thresholds: ttft_slack and short_reply_tokens must be ≥ 0")
	}
	return nil
}

// sameRollout reports whether a and b are the same rollout: the same
// versions and steps. Other fields may change without restarting it.
func sameRollout(a, b Spec) bool {
	return a.Version == b.Version && a.Baseline == b.Baseline && slices.Equal(a.Steps, b.Steps)
}

// MarshalJSON writes TTFTSlack as a duration string ("25ms").
func (t Thresholds) MarshalJSON() ([]byte, error) {
	type plain Thresholds
	return json.Marshal(struct {
		plain
		TTFTSlack string `json:"ttft_slack"`
	}{plain(t), t.TTFTSlack.String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (t *Thresholds) UnmarshalJSON(b []byte) error {
	type plain Thresholds
	var v struct {
		plain
		TTFTSlack string `json:"ttft_slack"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*t = Thresholds(v.plain)
	t.TTFTSlack = 0
	if v.TTFTSlack != "" {
		d, err := time.ParseDuration(v.TTFTSlack)
		if err != nil {
			return fmt.Errorf("ttft_slack: %w", err)
		}
		t.TTFTSlack = d
	}
	return nil
}
