package degrade

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelgate/modelgate/degrade/quota"
	"github.com/modelgate/modelgate/degrade/replycache"
)

// Fleet reports the instances of a service: the Gate's source of health
// signals and of a service's capacity. *balancer.Balancer (with breakers
// and requests in flight) and *discovery.Pool (instances only) implement it.
// It must be safe for concurrent use; the Gate calls it once per route and
// interval from Run, and when a tier change caps a service.
type Fleet interface {
	// ServiceLoad counts the service's instances, the usable ones, those
	// whose breaker is open, the requests they have in flight, and the sum
	// of their max_concurrency (0 when any instance states none).
	ServiceLoad(service string) (instances, usable, breakerOpen, inFlight, capacity int)
}

// Gate admits requests under a route's degradation tier, its service's
// concurrency cap and queue, the reply cache and the consumer's quota, and
// learns from how they ended. It owns the whole degradation subsystem: the
// tier Controller (fed by Run from the Fleet and each route's Window), one
// Limiter per service, the reply cache and the quotas.
//
// # Protocol
//
// A caller (the router) makes two calls per request:
//
//  1. Admit(ctx, &Request{...}) returns a Decision and a Ticket. The
//     Decision's Verdict says what to do: Forward (send it upstream;
//     Waited > 0 if it queued), ToFallback (shed: skip the route, go to its
//     fallbacks), Cached (answer with Decision.Entry), Shed, Queued (the
//     queue turned it away: 503) or OverQuota (429 after RetryAfter).
//     Degraded is the value of a degraded reply's header (shed, queue,
//     cache), "" otherwise.
//  2. Ticket.Settle(Outcome) once the request has ended, whatever the
//     verdict, with what happened: the status, the tokens used (from
//     upstream usage), the upstream attempts and the TTFT, and, for a
//     complete 200 reply the ticket may store (Ticket.Storable), the reply.
//     Settle gives back the queue slot, records the attempts in the
//     route's Window, settles the quota reservation (cancelled when the
//     request never reached upstream and was not served from the cache;
//     committed with the real tokens otherwise), and stores the reply.
//
// Between the two, Ticket.Stale returns a stale reply the route's policy
// lets serve when every upstream attempt fails (stale-if-error).
//
// # Policy
//
//   - Quota first: a request reserves its prompt's tokens plus MaxTokens
//     (else the route's DefaultMaxTokens); over quota it is refused.
//   - TierShed and above turn away Sheddable routes (or send them to their
//     fallbacks).
//   - The cache: a request the CacheConfig allows (embeddings, temperature
//     0; StaleFor "all": any) is keyed; a fresh entry answers it; a stale
//     one answers it in TierCache, or is kept for stale-if-error. A request
//     the policy does not allow is never keyed, never stored, never served
//     from the cache: in TierCache it still goes upstream, and gets the
//     upstream's answer or no_instance.
//   - TierCap and above cap each service at its routes' MaxConcurrency (the
//     smallest), else its instances' summed capacity, else 64; the excess
//     waits in the service's priority queue until its QueueTimeout.
//   - A route that has had no usable instance since start or its last
//     Reload reports itself ready: it has nothing to protect and nothing
//     cached worth serving, so it never enters TierCache on that account.
//
// All methods are safe for concurrent use. Admit takes no lock beyond the
// queue's, and allocates only while a request waits in the queue.
type Gate struct {
	fleet  Fleet
	opts   options
	ctl    *Controller
	quotas *quota.Quotas

	state atomic.Pointer[gateState]

	mu       sync.Mutex // serialises Reload; guards what follows
	limiters map[string]*Limiter
	windows  map[string]*Window
	span     time.Duration
	lru      *replycache.LRU
	lruCfg   replycache.LRUConfig
}

// gateState is one configuration in force. It is immutable once published.
type gateState struct {
	cfg       Config
	routes    map[string]*gateRoute
	byService map[string][]*gateRoute
	cache     replycache.Store // nil: off
	rules     replycache.Rules
	staleAll  bool
}

// gateRoute is a route under one configuration.
type gateRoute struct {
	Route
	limiter *Limiter
	window  *Window
	// cap is the smallest MaxConcurrency of the service's routes; 0 none.
	cap int
	// usable: the route has had a usable instance under this
	// configuration (seen by signals, or an upstream reply settled).
	usable atomic.Bool
}

// NewGate returns a Gate over fleet (nil: every route counts as ready and
// only its window signals) with cfg, copied. Start its tier controller
// with Run. It reads the options WithClock, WithLogger, OnChange,
// WithQuotaStore and WithCacheStore.
func NewGate(fleet Fleet, cfg Config, opts ...Option) (*Gate, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	g := &Gate{fleet: fleet, opts: collect(opts), limiters: map[string]*Limiter{}, windows: map[string]*Window{}}
	g.quotas = quota.New(g.opts.quotaStore, quota.WithLogger(g.opts.log))
	g.ctl = NewController(g.signals, WithClock(g.opts.clock), WithLogger(g.opts.log),
		WithThresholds(c.thresholds()), WithInterval(c.Interval), OnChange(g.tierChanged))
	g.install(c)
	return g, nil
}

// Reload validates cfg and, if it is good, applies it — every field, the
// cache's included — from the next Admit on; a bad cfg changes nothing.
// Routes keep their tiers and pins, services their queues, routes their
// windows (unless Window changed). The in-process cache is rebuilt, empty,
// when its size or TTLs change.
func (g *Gate) Reload(cfg Config) error {
	c, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	g.install(c)
	return nil
}

// install makes c, validated and copied, the configuration in force.
func (g *Gate) install(c Config) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := &gateState{cfg: c, routes: make(map[string]*gateRoute, len(c.Routes)),
		byService: map[string][]*gateRoute{}, staleAll: c.Cache.StaleFor == StaleAll,
		rules: replycache.Rules{Always: c.Cache.Always, Deterministic: c.Cache.Deterministic}}
	if c.Window != g.span {
		g.windows, g.span = map[string]*Window{}, c.Window
	}
	for _, r := range c.Routes {
		gr := &gateRoute{Route: r}
		if gr.limiter = g.limiters[r.Service]; gr.limiter == nil {
			gr.limiter = NewLimiter(0, c.QueueSize, WithClock(g.opts.clock))
			g.limiters[r.Service] = gr.limiter
		}
		gr.limiter.SetMaxQueue(c.QueueSize)
		if gr.window = g.windows[r.Name]; gr.window == nil {
			gr.window = NewWindow(c.Window)
			g.windows[r.Name] = gr.window
		}
		st.routes[r.Name] = gr
		st.byService[r.Service] = append(st.byService[r.Service], gr)
	}
	for _, rs := range st.byService {
		least := 0
		for _, r := range rs {
			if r.MaxConcurrency > 0 && (least == 0 || r.MaxConcurrency < least) {
				least = r.MaxConcurrency
			}
		}
		for _, r := range rs {
			r.cap = least
		}
	}
	st.cache = g.cacheStore(&c.Cache)
	g.state.Store(st)

	g.ctl.SetThresholds(c.thresholds())
	g.ctl.SetInterval(c.Interval)
	names := make([]string, 0, len(c.Routes))
	for _, r := range c.Routes {
		names = append(names, r.Name)
	}
	g.ctl.SetRoutes(names)
	for svc, rs := range st.byService {
		g.applyCap(st, svc, rs[0].limiter, "", 0)
	}
}

// cacheStore returns the store that serves under cc, nil when it is off.
// g.mu must be held.
func (g *Gate) cacheStore(cc *CacheConfig) replycache.Store {
	switch {
	case cc.Disabled:
		g.lru = nil // free its memory; re-enabling starts empty
		return nil
	case g.opts.cacheStore != nil:
		return g.opts.cacheStore
	}
	if cfg := cc.lru(); g.lru == nil || cfg != g.lruCfg {
		g.lru, g.lruCfg = replycache.NewLRU(cfg), cfg
	}
	return g.lru
}

// Config returns a copy of the configuration in force, defaults filled.
func (g *Gate) Config() Config { return g.state.Load().cfg.clone() }

// Run recomputes every route's tier once per Config.Interval until ctx is
// done, then returns ctx's error.
func (g *Gate) Run(ctx context.Context) error { return g.ctl.Run(ctx) }

// Tier returns the route's effective tier; TierNormal while Config.Disabled.
// It is lock-free and does not allocate.
func (g *Gate) Tier(route string) Tier {
	if g.state.Load().cfg.Disabled {
		return TierNormal
	}
	return g.ctl.Tier(route)
}

// Pin holds a route at tier for ttl (≤ 0: until Unpin); see Controller.Pin.
func (g *Gate) Pin(route string, tier Tier, ttl time.Duration) error {
	return g.ctl.Pin(route, tier, ttl)
}

// PinWithReason is Pin with a reason for RouteStatus; see
// Controller.PinWithReason.
func (g *Gate) PinWithReason(route string, tier Tier, ttl time.Duration, reason string) error {
	return g.ctl.PinWithReason(route, tier, ttl, reason)
}

// Signals returns a route's signals as of now, read from its instances and
// its window as the controller reads them each interval (which Status
// shows); an unknown route reads as ready and idle. It allocates nothing;
// it walks the route's pool, so call it from the admin path.
func (g *Gate) Signals(route string) Signals { return g.signals(route) }

// Unpin ends a route's pin; see Controller.Unpin.
func (g *Gate) Unpin(route string) { g.ctl.Unpin(route) }

// Status returns a route's degradation state, and false if it is unknown.
func (g *Gate) Status(route string) (RouteStatus, bool) { return g.ctl.Status(route) }

// Statuses returns every route's degradation state, by name.
func (g *Gate) Statuses() []RouteStatus { return g.ctl.Statuses() }

// QueueStats returns the queue of a route's service, and false if the
// route is unknown.
func (g *Gate) QueueStats(route string) (LimiterStats, bool) {
	r := g.state.Load().routes[route]
	if r == nil {
		return LimiterStats{}, false
	}
	return r.limiter.Stats(), true
}

// signals is the controller's SignalSource: the route's instances from the
// Fleet and its recent requests from its Window.
func (g *Gate) signals(name string) Signals {
	st := g.state.Load()
	r := st.routes[name]
	if r == nil {
		return Signals{Ready: 1}
	}
	s := Signals{Ready: 1, TTFTSLO: r.TTFTSLO}
	s.Requests, s.ErrorRatio, s.TTFTp95 = r.window.Snapshot(g.opts.clock.Now())
	if g.fleet == nil {
		s.Capacity = r.cap
		return s
	}
	all, usable, open, inFlight, capacity := g.fleet.ServiceLoad(r.Service)
	if usable > 0 {
		r.usable.Store(true)
	}
	if !r.usable.Load() {
		return s // never usable here: not degraded, just absent
	}
	s.Ready, s.BreakerOpen, s.InFlight = 0, 0, inFlight
	if all > 0 {
		s.Ready, s.BreakerOpen = float64(usable)/float64(all), float64(open)/float64(all)
	}
	s.Capacity = r.cap
	if s.Capacity == 0 {
		s.Capacity = capacity // 0: unknown, not a signal
	}
	return s
}

// tierChanged is the controller's change hook: it applies the cap policy,
// then tells the caller's hook.
func (g *Gate) tierChanged(name string, from, to Tier, pinned bool) {
	st := g.state.Load()
	if r := st.routes[name]; r != nil {
		g.applyCap(st, r.Service, r.limiter, name, to)
	}
	if g.opts.onChange != nil {
		g.opts.onChange(name, from, to, pinned)
	}
}

// applyCap caps a service while any of its routes is at TierCap or above
// and lifts the cap when none is. changed and to are a route whose tier is
// changing and its new tier, which the controller has not published yet.
func (g *Gate) applyCap(st *gateState, service string, l *Limiter, changed string, to Tier) {
	capped := false
	for _, r := range st.byService[service] {
		tier := g.ctl.Tier(r.Name)
		if r.Name == changed {
			tier = to
		}
		capped = capped || (tier >= TierCap && !st.cfg.Disabled)
	}
	if !capped {
		l.SetCap(0)
		return
	}
	c := st.byService[service][0].cap
	if c == 0 && g.fleet != nil {
		_, _, _, _, c = g.fleet.ServiceLoad(service)
	}
	if c == 0 {
		c = defaultRouteCap
	}
	l.SetCap(c)
}
