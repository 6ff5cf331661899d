package canary

import (
	"math/rand/v2"
	"slices"
	"time"
)

// Outcome is one finished exchange (or failed attempt) of a version, as
// the router accounts for it.
type Outcome struct {
	Status   int  // HTTP status relayed or received; 0 if none
	Err      bool // a transport error, a timeout or a stream broken midway
	Canceled bool // the client went away: not counted at all
	// TTFT is the time to the first token for a stream, or to the whole
	// reply otherwise.
	TTFT time.Duration
	// Duration is the time to the last byte.
	Duration time.Duration
	// OutputTokens of a successful reply (reported or estimated).
	OutputTokens int
	// FinishReason of a successful reply's first choice ("stop",
	// "length", ...), if known.
	FinishReason string
	// Stream: TTFT is a real first token, so tokens per second is measured
	// over Duration - TTFT.
	Stream bool
	// NoGeneration marks replies that generate no tokens (embeddings): they
	// count for errors and latency only.
	NoGeneration bool
}

// failed reports whether o counts as an error of the version.
func (o *Outcome) failed() bool { return o.Err || o.Status >= 500 }

// maxSamples bounds the TTFT samples kept per version and step; past it a
// reservoir keeps a uniform sample.
const maxSamples = 8192

// arm accumulates one version's outcomes over a step's window.
type arm struct {
	requests, errors int
	replies, bad     int // successful generating replies, and the bad ones among them
	tokens           int64
	genTime          time.Duration
	ttft             []time.Duration
	seen             int // TTFT samples offered
}

func (a *arm) add(o *Outcome, shortReply int) {
	a.requests++
	if o.failed() {
		a.errors++
		return
	}
	if o.Status != 200 {
		return // a 4xx: the request was bad, not the version
	}
	if o.TTFT > 0 {
		a.seen++
		if len(a.ttft) < maxSamples {
			a.ttft = append(a.ttft, o.TTFT)
		} else if i := rand.IntN(a.seen); i < maxSamples {
			a.ttft[i] = o.TTFT
		}
	}
	if o.NoGeneration {
		return
	}
	a.replies++
	if o.OutputTokens == 0 || (o.FinishReason == "length" && o.OutputTokens < shortReply) {
		a.bad++
	}
	gen := o.Duration
	if o.Stream && o.TTFT > 0 && o.Duration > o.TTFT {
		gen = o.Duration - o.TTFT
	}
	if gen > 0 && o.OutputTokens > 0 {
		a.tokens += int64(o.OutputTokens)
		a.genTime += gen
	}
}

// Figures are one version's numbers over a window.
type Figures struct {
	Requests        int     `json:"requests"`
	Errors          int     `json:"errors"`
	ErrorRatio      float64 `json:"error_ratio"` // errors / requests
	TTFTP95ms       float64 `json:"ttft_p95_ms"`
	TokensPerSecond float64 `json:"output_tokens_per_second"` // per reply, over generation time
	Replies         int     `json:"replies"`                  // successful replies that generate tokens
	BadReplies      int     `json:"bad_replies"`              // of them, empty or cut short
	BadReplyRatio   float64 `json:"bad_reply_ratio"`
}

func (a *arm) figures() Figures {
	f := Figures{Requests: a.requests, Errors: a.errors, Replies: a.replies, BadReplies: a.bad}
	if a.requests > 0 {
		f.ErrorRatio = float64(a.errors) / float64(a.requests)
	}
	if a.replies > 0 {
		f.BadReplyRatio = float64(a.bad) / float64(a.replies)
	}
	if a.genTime > 0 {
		f.TokensPerSecond = float64(a.tokens) / a.genTime.Seconds()
	}
	f.TTFTP95ms = float64(p95(a.ttft).Microseconds()) / 1000
	return f
}

// p95 is the 95th percentile (nearest rank) of samples; 0 if none.
func p95(samples []time.Duration) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	i := (len(s)*95 + 99) / 100 // ceil(0.95 n), 1-based
	return s[max(i-1, 0)]
}
