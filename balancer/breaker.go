package balancer

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// BreakerSettings configures the circuit breaker each instance gets. The
// zero value of every field means its default.
type BreakerSettings struct {
	// ConsecutiveFailures trips the breaker after this many failures in a
	// row. Default 5.
	ConsecutiveFailures uint32 `yaml:"consecutive_failures"`
	// FailureRatio trips the breaker when at least this fraction of the
	// results in Window are failures. Default 0.5; negative turns the rule off.
	FailureRatio float64 `yaml:"failure_ratio"`
	// MinRequests is how many results Window must hold before FailureRatio
	// applies. Default 20.
	MinRequests uint32 `yaml:"min_requests"`
	// Window is the rolling window (ten buckets) of the ratio rule. Default 10s.
	Window time.Duration `yaml:"window"`
	// OpenTimeout is how long an open breaker turns requests away before it
	// lets probes through (half-open). Default 10s.
	OpenTimeout time.Duration `yaml:"open_timeout"`
	// HalfOpenProbes is how many requests a half-open breaker lets through
	// at once, and how many successes in a row close it. Default 3.
	HalfOpenProbes uint32 `yaml:"half_open_probes"`
}

// Validate reports a setting no breaker can have: a failure ratio above 1
// or a negative duration.
func (s BreakerSettings) Validate() error {
	switch {
	case s.FailureRatio > 1:
		return fmt.Errorf("%w: breaker failure_ratio %v, want at most 1 (negative: off)", ErrBadRoute, s.FailureRatio)
	case s.Window < 0 || s.OpenTimeout < 0:
		return fmt.Errorf("%w: breaker window and open_timeout must not be negative", ErrBadRoute)
	}
	return nil
}

func (s BreakerSettings) withDefaults() BreakerSettings {
	def := func(v *uint32, d uint32) {
		if *v == 0 {
			*v = d
		}
	}
	def(&s.ConsecutiveFailures, 5)
	def(&s.MinRequests, 20)
	def(&s.HalfOpenProbes, 3)
	if s.FailureRatio == 0 {
		s.FailureRatio = 0.5
	}
	if s.Window <= 0 {
		s.Window = 10 * time.Second
	}
	if s.OpenTimeout <= 0 {
		s.OpenTimeout = 10 * time.Second
	}
	return s
}

type breakerCounts = gobreaker.Counts

// readyToTrip is the gobreaker ReadyToTrip of settings s.
func (s BreakerSettings) readyToTrip(c breakerCounts) bool {
	return c.ConsecutiveFailures >= s.ConsecutiveFailures ||
		(s.FailureRatio > 0 && c.Requests >= s.MinRequests &&
			float64(c.TotalFailures) >= s.FailureRatio*float64(c.Requests))
}

// breaker is one instance's gobreaker CircuitBreaker with its state mirrored
// into atomics, so that Pick reads it without locking.
//
// The outcome of an attempt is known only at Done, so Done registers it with
// cb.Execute (which does not allocate, unlike the two-step Allow and its
// done closure) under mu; what two-step Allow does at pick time — turning
// away picks while open, bounding probes while half-open — Pick does
// lock-free from the mirror and the probes counter. Results are dropped when
// the breaker changed state since the pick (gobreaker's generations) or is
// open.
//
// The open timeout runs on the balancer's clock rather than gobreaker's
// time.Now, which tests cannot move: gobreaker's own Timeout is 1ns, and cb
// is not called while the mirror says open until the clock passes
// openUntil; then halfOpen lets gobreaker make the transition.
type breaker struct {
	cfg       atomic.Pointer[BreakerSettings] // with defaults filled; replaced by configure
	word      atomic.Uint64                   // gobreaker.State in the low 2 bits, generation above
	openUntil atomic.Int64                    // env clock
	openedAt  atomic.Int64                    // env clock
	probes    atomic.Int32                    // half-open probes in flight

	mu       sync.Mutex // serialises calls into cb; guards pending and consecutive
	cb       *gobreaker.CircuitBreaker[struct{}]
	pending  [2]transition
	npending int
	// consecutive counts failures in a row in the current state, however
	// far apart: gobreaker's rolling window forgets a failure older than
	// Window, so failures slower than Window/ConsecutiveFailures apart
	// would never trip it by that rule.
	consecutive uint32

	id  string
	env *env
}

type transition struct{ from, to gobreaker.State }

var errAttempt = errors.New("balancer: attempt failed")

func succeed() (struct{}, error) { return struct{}{}, nil }
func fail() (struct{}, error)    { return struct{}{}, errAttempt }

func (b *breaker) init(id string, e *env, s *BreakerSettings) {
	b.id, b.env = id, e
	b.cfg.Store(s)
	b.cb = newCB(b, s)
}

func newCB(b *breaker, s *BreakerSettings) *gobreaker.CircuitBreaker[struct{}] {
	return gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:          b.id,
		MaxRequests:   s.HalfOpenProbes,
		Interval:      s.Window,
		BucketPeriod:  s.Window / 10,
		Timeout:       time.Nanosecond, // the env clock decides; see breaker
		ReadyToTrip:   b.readyToTrip,
		OnStateChange: b.onChange,
	})
}

// configure gives the breaker settings s (defaults filled) if they differ
// from its own: it starts closed under them, and results of attempts
// picked before are dropped (a new generation).
func (b *breaker) configure(s *BreakerSettings) {
	if *b.cfg.Load() == *s {
		return
	}
	b.mu.Lock()
	b.cfg.Store(s)
	b.cb = newCB(b, s)
	b.consecutive, b.npending = 0, 0
	st, gen := b.load()
	b.word.Store(uint64(gobreaker.StateClosed) | uint64(gen+1)<<2)
	b.mu.Unlock()
	if st != gobreaker.StateClosed {
		b.announce([]transition{{st, gobreaker.StateClosed}})
	}
}

func (b *breaker) load() (gobreaker.State, uint32) {
	w := b.word.Load()
	return gobreaker.State(w & 3), uint32(w >> 2)
}

// closed reports whether the breaker is closed (it then admits every pick).
func (b *breaker) closed() bool { return gobreaker.State(b.word.Load()&3) == gobreaker.StateClosed }

// admits reports, without side effects, whether a pick would be admitted.
func (b *breaker) admits() bool {
	switch st, _ := b.load(); st {
	case gobreaker.StateClosed:
		return true
	case gobreaker.StateOpen:
		if b.env.clock() < b.openUntil.Load() {
			return false
		}
	}
	return b.probes.Load() < int32(b.cfg.Load().HalfOpenProbes)
}

// admit admits a pick: always when closed, into a free probe slot when
// half-open (or open past its timeout, which it turns half-open), never
// otherwise. It returns the generation the outcome will belong to.
func (b *breaker) admit() (gen uint32, probe, ok bool) {
	st, gen := b.load()
	if st == gobreaker.StateOpen {
		if b.env.clock() < b.openUntil.Load() {
			return 0, false, false
		}
		st, gen = b.halfOpen()
	}
	switch st {
	case gobreaker.StateClosed:
		return gen, false, true
	case gobreaker.StateOpen:
		return 0, false, false
	}
	limit := int32(b.cfg.Load().HalfOpenProbes)
	for {
		p := b.probes.Load()
		if p >= limit {
			return 0, false, false
		}
		if b.probes.CompareAndSwap(p, p+1) {
			return gen, true, true
		}
	}
}

// halfOpen lets gobreaker turn an open breaker half-open once the env clock
// has passed its timeout.
func (b *breaker) halfOpen() (gobreaker.State, uint32) {
	b.mu.Lock()
	if st, _ := b.load(); st == gobreaker.StateOpen {
		b.cb.State() // past gobreaker's 1ns timeout: open → half-open
	}
	st, gen := b.load()
	ev, n := b.take()
	b.mu.Unlock()
	b.announce(ev[:n])
	return st, gen
}

// record registers the outcome of an attempt admitted at generation gen.
func (b *breaker) record(gen uint32, failed bool) {
	b.mu.Lock()
	if st, cur := b.load(); cur != gen || st == gobreaker.StateOpen {
		b.mu.Unlock()
		return
	}
	if failed {
		b.consecutive++
		_, _ = b.cb.Execute(fail)
	} else {
		b.consecutive = 0
		_, _ = b.cb.Execute(succeed)
	}
	ev, n := b.take()
	b.mu.Unlock()
	b.announce(ev[:n])
}

// readyToTrip is gobreaker's ReadyToTrip, with b's own count of
// consecutive failures; it runs with b.mu held.
func (b *breaker) readyToTrip(c breakerCounts) bool {
	c.ConsecutiveFailures = max(c.ConsecutiveFailures, b.consecutive)
	return b.cfg.Load().readyToTrip(c)
}

// onChange is gobreaker's OnStateChange; it runs with b.mu held.
func (b *breaker) onChange(_ string, from, to gobreaker.State) {
	b.consecutive = 0
	_, gen := b.load()
	if to == gobreaker.StateOpen {
		now := b.env.clock()
		b.openedAt.Store(now)
		b.openUntil.Store(now + int64(b.cfg.Load().OpenTimeout))
	}
	b.word.Store(uint64(to) | uint64(gen+1)<<2)
	if b.npending < len(b.pending) {
		b.pending[b.npending] = transition{from, to}
		b.npending++
	}
}

// take returns and clears the pending transitions; b.mu is held.
func (b *breaker) take() ([2]transition, int) {
	ev, n := b.pending, b.npending
	b.npending = 0
	return ev, n
}

// announce logs transitions and calls OnBreakerChange, outside b.mu.
func (b *breaker) announce(ev []transition) {
	for _, t := range ev {
		lvl := b.env.log.Info()
		if t.to == gobreaker.StateOpen {
			lvl = b.env.log.Warn()
		}
		lvl.Str("instance", b.id).Str("from", t.from.String()).Str("to", t.to.String()).Msg("breaker state changed")
		if b.env.onChange != nil {
			b.env.onChange(b.id, t.from.String(), t.to.String())
		}
	}
}

// endOpen ends an open breaker's timeout now: the next pick turns it
// half-open and its probes decide.
func (b *breaker) endOpen() {
	if st, _ := b.load(); st == gobreaker.StateOpen {
		b.openUntil.Store(min(b.openUntil.Load(), b.env.clock()))
	}
}

// state returns the state a pick would see: an open breaker past its
// timeout is half-open.
func (b *breaker) state() gobreaker.State {
	st, _ := b.load()
	if st == gobreaker.StateOpen && b.env.clock() >= b.openUntil.Load() {
		return gobreaker.StateHalfOpen
	}
	return st
}
