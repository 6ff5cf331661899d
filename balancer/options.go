package balancer

import (
	"hash/maphash"
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

// WithEngineStale sets how long an engine load given to SetEngineLoad
// counts (default DefaultEngineStale); d ≤ 0 means the default.
func WithEngineStale(d time.Duration) Option {
	return func(b *Balancer) {
		if d > 0 {
			b.env.stale = int64(d)
		}
	}
}

// WithHealthFailures sets how many active health probes in a row must fail
// before an instance is not picked (default DefaultHealthFailures); n ≤ 0
// means the default.
func WithHealthFailures(n int) Option {
	return func(b *Balancer) {
		if n > 0 {
			b.env.healthFailures = n
		}
	}
}

// WithPrefixIndexSize sets the capacity, in block hashes, of each
// service's prefix index (default DefaultPrefixIndexEntries: 16,384 hashes
// in 192 KiB, for each service whose routes score prefixes); n ≤ 0 means
// the default.
func WithPrefixIndexSize(n int) Option {
	return func(b *Balancer) {
		if n > 0 {
			b.env.prefixes.entries = n
		}
	}
}

// env is what every part of one Balancer shares: clock, randomness, logger
// and breaker settings. It is not modified after New.
type env struct {
	now      func() time.Time
	epoch    time.Time
	rand     func() uint64
	log      zerolog.Logger
	onChange func(id, from, to string)
	brk      BreakerSettings // with defaults filled, for routes that set none
	seed     maphash.Seed    // of prefix block hashes
	prefixes *prefixTable
	stale    int64 // nanoseconds an engine load counts
	// healthFailures is how many failed health probes in a row take an
	// instance out.
	healthFailures int
}

func newEnv() *env {
	return &env{now: time.Now, rand: rand.Uint64, log: zerolog.Nop(), seed: maphash.MakeSeed(),
		prefixes: &prefixTable{entries: DefaultPrefixIndexEntries, byKey: map[string]*prefixIndex{}},
		stale:    int64(DefaultEngineStale), healthFailures: DefaultHealthFailures}
}

// clock returns the time on the balancer's clock, in nanoseconds since New.
func (e *env) clock() int64 { return int64(e.now().Sub(e.epoch)) }
