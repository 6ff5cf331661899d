package canary

import (
	"fmt"
	"strings"
	"time"
)

// Results of a verdict.
const (
	Pass   = "pass"
	Breach = "breach"
)

// Check is one comparison of a verdict: the canary's value against the
// limit derived from the baseline's.
type Check struct {
	Name     string  `json:"name"` // error_ratio, ttft_p95_ms, output_tokens_per_second, bad_reply_ratio
	Canary   float64 `json:"canary"`
	Baseline float64 `json:"baseline"`
	Limit    float64 `json:"limit"` // the canary's worst allowed value
	OK       bool    `json:"ok"`
	Skipped  bool    `json:"skipped,omitempty"` // not enough data on one side
}

// Verdict is the judgment of one step: every check with its numbers.
type Verdict struct {
	Result   string    `json:"result"` // Pass or Breach
	Step     int       `json:"step"`   // 1-based
	Share    float64   `json:"share_percent"`
	At       time.Time `json:"at"`
	Canary   Figures   `json:"canary"`
	Baseline Figures   `json:"baseline"`
	Checks   []Check   `json:"checks"`
}

// judge compares the canary with the baseline under t.
func judge(canary, base Figures, t Thresholds) (string, []Check) {
	checks := []Check{
		{Name: "error_ratio", Canary: canary.ErrorRatio, Baseline: base.ErrorRatio,
			Limit: base.ErrorRatio + t.ErrorPoints/100},
	}
	ttft := Check{Name: "ttft_p95_ms", Canary: canary.TTFTP95ms, Baseline: base.TTFTP95ms,
		Limit: max(base.TTFTP95ms*t.TTFTFactor, base.TTFTP95ms+float64(t.TTFTSlack.Microseconds())/1000)}
	ttft.Skipped = canary.TTFTP95ms == 0 || base.TTFTP95ms == 0
	checks = append(checks, ttft)
	tps := Check{Name: "output_tokens_per_second", Canary: canary.TokensPerSecond, Baseline: base.TokensPerSecond,
		Limit: base.TokensPerSecond * t.TokensFactor}
	tps.Skipped = canary.Replies == 0 || base.Replies == 0 || base.TokensPerSecond == 0
	checks = append(checks, tps)
	bad := Check{Name: "bad_reply_ratio", Canary: canary.BadReplyRatio, Baseline: base.BadReplyRatio,
		Limit: base.BadReplyRatio + t.BadReplyPoints/100}
	bad.Skipped = canary.Replies == 0 || base.Replies == 0
	checks = append(checks, bad)
	result := Pass
	for i := range checks {
		c := &checks[i]
		switch {
		case c.Skipped:
			c.OK = true
		case c.Name == "output_tokens_per_second":
			c.OK = c.Canary >= c.Limit
		default:
			c.OK = c.Canary <= c.Limit
		}
		if !c.OK {
			result = Breach
		}
	}
	return result, checks
}

// Summary is the verdict in one line, with the numbers of every check.
func (v *Verdict) Summary() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s at step %d (%g %%): canary %d requests, baseline %d", v.Result, v.Step, v.Share,
		v.Canary.Requests, v.Baseline.Requests)
	for _, c := range v.Checks {
		mark := "ok"
		switch {
		case c.Skipped:
			mark = "skipped"
		case !c.OK:
			mark = "BREACH"
		}
		op := "≤"
		if c.Name == "output_tokens_per_second" {
			op = "≥"
		}
		fmt.Fprintf(&sb, "; %s %.4g vs baseline %.4g (limit %s %.4g) %s", c.Name, c.Canary, c.Baseline, op, c.Limit, mark)
	}
	return sb.String()
}

// Breached returns the names of the checks that failed.
func (v *Verdict) Breached() []string {
	var out []string
	for _, c := range v.Checks {
		if !c.OK {
			out = append(out, c.Name)
		}
	}
	return out
}
