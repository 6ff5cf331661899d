package quota

import (
	"math"
	"time"
)

// Limits are a consumer's quotas. Zero means unlimited.
type Limits struct {
	RPM int `yaml:"rpm" json:"rpm"` // requests per minute
	TPM int `yaml:"tpm" json:"tpm"` // tokens per minute, prompt and completion
}

// Unlimited reports whether neither limit is set.
func (l Limits) Unlimited() bool { return l.RPM <= 0 && l.TPM <= 0 }

// bucket is a token bucket that holds up to size tokens and refills size
// tokens a minute, continuously. Its level goes below zero while a large
// reservation is held, and after usage is charged beyond an estimate (a
// debt, which a charge takes no deeper than -size). It is not safe for
// concurrent use.
type bucket struct {
	level float64
	last  time.Time // when level was last refilled; zero: never used (full)
}

// refill brings the bucket to now. Time that runs backwards adds nothing.
func (b *bucket) refill(size int, now time.Time) {
	if b.last.IsZero() {
		b.level, b.last = float64(size), now
		return
	}
	if now.After(b.last) {
		b.level = math.Min(float64(size), b.level+float64(size)*now.Sub(b.last).Minutes())
		b.last = now
	}
	b.level = math.Min(b.level, float64(size)) // the limit may have shrunk
}

// wait returns how long until the bucket holds need tokens; 0 if it does.
// need is capped at size, so a request larger than a minute's quota waits
// for a full bucket rather than forever.
func (b *bucket) wait(size int, need float64) time.Duration {
	need = math.Min(need, float64(size))
	if b.level >= need {
		return 0
	}
	return time.Duration(math.Ceil((need - b.level) / float64(size) * float64(time.Minute)))
}

// take removes n tokens, with no floor: a reservation larger than the
// bucket is held whole, so that settling it restores the right level.
func (b *bucket) take(n float64) { b.level -= n }

// add puts n tokens back, up to size; a negative n charges them, taking the
// level no deeper than -size (or than it already was).
func (b *bucket) add(size int, n float64) {
	if n >= 0 {
		b.level = math.Min(float64(size), b.level+n)
		return
	}
	b.level = math.Max(b.level+n, math.Min(b.level, -float64(size)))
}
