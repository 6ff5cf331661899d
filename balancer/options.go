package balancer

import (
	"math/rand/v2"
	"time"

	"github.com/rs/zerolog"
)

// Option configures a Balancer.
type Option func(*Balancer)

// WithPolicy sets the policy that chooses within a candidate set; nil
// means the default, power of two choices (as p2c.New()).
func WithPolicy(p Policy) Option { return func(b *Balancer) { b.policy = p } }

// WithBreaker sets the per-instance circuit breaker settings; zero fields
// take their documented defaults.
func WithBreaker(s BreakerSettings) Option { return func(b *Balancer) { b.env.brk = s } }

// WithLogger sets the logger for breaker transitions and dropped routes
// (default: none).
func WithLogger(l zerolog.Logger) Option { return func(b *Balancer) { b.env.log = l } }

// WithClock sets the clock that times open breakers (default time.Now).
// Tests inject a fake one to drive breakers through half-open without
// sleeping. It must be safe for concurrent use.
func WithClock(now func() time.Time) Option { return func(b *Balancer) { b.env.now = now } }

// WithRand sets the random source for version splits and policies (default
// math/rand/v2's Uint64). It must be safe for concurrent use if Pick is
// called concurrently; a seeded *rand.Rand is not, so give it only to
// single-goroutine tests.
func WithRand(r func() uint64) Option { return func(b *Balancer) { b.env.rand = r } }

// OnBreakerChange sets a function called once per breaker transition, with
// the instance ID and the states ("closed", "open", "half-open"). It is
// called synchronously from Pick or Picked.Done, after the breaker's lock is
// released, so it must be quick; it may call the Balancer.
func OnBreakerChange(fn func(id, from, to string)) Option {
	return func(b *Balancer) { b.env.onChange = fn }
}

// env is what every part of one Balancer shares: clock, randomness, logger
// and breaker settings. It is not modified after New.
type env struct {
	now      func() time.Time
	epoch    time.Time
	rand     func() uint64
	log      zerolog.Logger
	onChange func(id, from, to string)
	brk      BreakerSettings
	trip     func(counts breakerCounts) bool
}

func newEnv() *env {
	return &env{now: time.Now, rand: rand.Uint64, log: zerolog.Nop()}
}

// clock returns the time on the balancer's clock, in nanoseconds since New.
func (e *env) clock() int64 { return int64(e.now().Sub(e.epoch)) }
