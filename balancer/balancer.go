package balancer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/modelgate/modelgate/balancer/internal/twochoice"
	"github.com/modelgate/modelgate/discovery"
)

// Balancer is the Picker of modelgate: it picks an instance for a route
// from the pool, honouring required and preferred tags, the route's version
// split, per-instance circuit breakers and max_concurrency, with a Policy
// choosing within each candidate set.
//
// Pick and Picked.Done are safe for concurrent use; Pick neither blocks nor
// allocates on success. The slow path — Run on pool changes, SetRoutes —
// compiles an immutable state and swaps it atomically; rebuilds are
// serialised. Per-instance statistics and breakers survive rebuilds while
// the instance's ID stays in the pool.
type Balancer struct {
	pool   *discovery.Pool
	env    *env
	policy Policy
	state  atomic.Pointer[state]

	mu            sync.Mutex // serialises rebuilds; guards the fields below
	routes        []Route
	gen           uint64                    // builds so far
	serials       uint32                    // the last instance serial given out
	stats         map[string]*stats         // by instance ID
	routePanics   map[string]*atomic.Uint64 // by route name
	servicePanics map[string]*atomic.Uint64 // by pool key
	canaries      map[string]Canary         // by route name (SetCanary)
}

var _ Picker = (*Balancer)(nil)

// New returns a Balancer over pool with routes, built from the pool's
// current snapshot. Start Run to follow pool changes. Routes should be
// valid (ValidateRoutes); an invalid one is logged and left out, so picks
// for it fall back to their Request.Service.
func New(pool *discovery.Pool, routes []Route, opts ...Option) *Balancer {
	b := &Balancer{pool: pool, env: newEnv(), stats: map[string]*stats{},
		routePanics: map[string]*atomic.Uint64{}, servicePanics: map[string]*atomic.Uint64{},
		canaries: map[string]Canary{}}
	for _, o := range opts {
		o(b)
	}
	if b.policy == nil {
		b.policy = p2c{}
	}
	b.env.epoch = b.env.now()
	b.env.brk = b.env.brk.withDefaults()
	var errs []error
	b.routes, errs = sortRoutes(routes)
	for _, err := range errs {
		b.env.log.Error().Err(err).Msg("route left out")
	}
	b.install(pool.Snapshot())
	return b
}

// Pick chooses an instance for req; see Balancer and Route for how. It
// returns an error wrapping ErrNoInstance when nothing matches. When every
// matching instance's breaker is open, it picks the least bad one anyway
// (panic mode, counted by PanicPicks).
func (b *Balancer) Pick(req *Request) (Picked, error) {
	st := b.state.Load()
	r := st.routes[req.Route]
	if r == nil {
		if r = st.services[req.Service]; r == nil {
			return Picked{}, fmt.Errorf("%w: unknown route %q and service %q", ErrNoInstance, req.Route, req.Service)
		}
	}
	return r.pick(b.env, req)
}

// SetRoutes validates routes and, if they are all good, makes them the
// ones in force from the next pick; otherwise it returns the error and
// changes nothing. Statistics and breakers are kept.
func (b *Balancer) SetRoutes(routes []Route) error {
	good, errs := sortRoutes(routes)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.routes = good
	b.install(b.pool.Snapshot())
	return nil
}

// Run rebuilds the balancer's state on every pool change until ctx is
// done, then returns ctx's error. Without it Pick keeps seeing the pool as
// it was at New (or at the last SetRoutes).
func (b *Balancer) Run(ctx context.Context) error {
	for {
		snap := b.pool.Snapshot()
		if b.state.Load().snap != snap {
			b.rebuild()
		}
		select {
		case <-snap.Changed():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitVersion blocks until the balancer has built from pool version v or a
// later one, or ctx is done.
func (b *Balancer) WaitVersion(ctx context.Context, v uint64) error {
	for {
		st := b.state.Load()
		if st.snap.Version >= v {
			return nil
		}
		select {
		case <-st.changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// rebuild compiles the current pool snapshot unless the state is already
// of it.
func (b *Balancer) rebuild() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if snap := b.pool.Snapshot(); b.state.Load().snap != snap {
		b.install(snap)
	}
}

// install compiles snap and b.routes into a new state and publishes it.
// b.mu is held.
func (b *Balancer) install(snap *discovery.Snapshot) {
	old := b.state.Swap(b.build(snap))
	if old != nil {
		close(old.changed)
	}
}

// DefaultPolicy returns the power-of-two-choices policy that package p2c
// documents; it lives here because p2c imports this package.
func DefaultPolicy() Policy { return p2c{} }

// p2c is the default policy: see package p2c.
type p2c struct{}

func (p2c) Name() string { return "p2c" }
func (p2c) Build(set Candidates) Selector {
	for i := 1; i < set.Len(); i++ {
		if set.Weight(i) != set.Weight(0) {
			return &p2cSelector{cum: twochoice.Cumulative(set.Len(), set.Weight)}
		}
	}
	return &p2cSelector{} // equal weights: a uniform draw is the weighted one, and cheaper
}

// p2cSelector draws by cum, the cumulative weights, or uniformly when nil.
type p2cSelector struct{ cum []float64 }

// Select is package p2c's Selector.Select.
func (s *p2cSelector) Select(c Candidates) int {
	a, b := -1, -1
	if s.cum != nil {
		a, b = twochoice.DrawPair(s.cum, c.Uint64())
	}
	if a < 0 || !c.Available(a) || (b >= 0 && !c.Available(b)) {
		a, b = c.Pair() // some are unavailable: any two that are
	}
	if b >= 0 && twochoice.Second(c.InFlight(a), c.InFlight(b), c.Latency(a), c.Latency(b), c.Weight(a), c.Weight(b), c.Uint64()) {
		return b
	}
	return a
}
