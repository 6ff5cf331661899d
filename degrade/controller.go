package degrade

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/modelgate/modelgate/internal/tick"
)

// SignalSource returns the current signals of a route. Controller.Run calls
// it for every known route once per interval, from Run's goroutine only.
type SignalSource func(route string) Signals

// ChangeFunc is told of every change of a route's effective tier: the tier
// Controller.Tier returns. pinned says whether the new tier is an admin pin.
type ChangeFunc func(route string, from, to Tier, pinned bool)

// Controller keeps the degradation tier of each route: it turns signals into
// tiers with hysteresis, and holds admin pins. Tier is lock-free and meant
// for the request path; Observe, Pin, Unpin and SetRoutes are for the
// once-a-second and admin paths. All methods are safe for concurrent use.
type Controller struct {
	src      SignalSource
	th       atomic.Pointer[Thresholds]
	interval atomic.Int64 // nanoseconds
	clock    Clock
	log      zerolog.Logger
	onChange ChangeFunc

	mu     sync.Mutex // serialises writers of routes
	routes atomic.Pointer[map[string]*route]
}

// route is the state of one route. tier is read without locks; the rest is
// guarded by mu.
type route struct {
	name string
	tier atomic.Uint32

	mu        sync.Mutex
	h         hysteresis
	raw       Tier
	why       trigger // the condition behind raw
	signals   Signals
	pinned    bool
	pin       Tier
	pinUntil  time.Time // zero: until Unpin
	pinReason string
	since     time.Time // when tier last changed
}

// NewController returns a Controller that knows no route yet. src feeds Run
// and may be nil when the caller drives Observe itself.
func NewController(src SignalSource, opts ...Option) *Controller {
	o := collect(opts)
	c := &Controller{src: src, clock: o.clock, log: o.log, onChange: o.onChange}
	c.interval.Store(int64(o.interval))
	c.th.Store(&o.th)
	c.routes.Store(&map[string]*route{})
	return c
}

// SetInterval changes how often Run observes every route (d ≤ 0: keep),
// from the next tick on.
func (c *Controller) SetInterval(d time.Duration) {
	if d > 0 {
		c.interval.Store(int64(d))
	}
}

// SetThresholds replaces the thresholds (zero fields take their defaults)
// from the next observation on; every route keeps its tier and runs.
func (c *Controller) SetThresholds(t Thresholds) {
	th := t.withDefaults()
	c.th.Store(&th)
}

// Tier returns the route's effective tier: its pin, else the tier its
// signals earned. An unknown route is TierNormal. It is lock-free and does
// not allocate.
func (c *Controller) Tier(name string) Tier {
	if r := (*c.routes.Load())[name]; r != nil {
		return Tier(r.tier.Load())
	}
	return TierNormal
}

// SetRoutes makes names the known routes: new ones start in TierNormal,
// gone ones are forgotten with their pins, the others keep their state.
func (c *Controller) SetRoutes(names []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.routes.Load()
	m := make(map[string]*route, len(names))
	for _, n := range names {
		if r := old[n]; r != nil {
			m[n] = r
		} else {
			m[n] = &route{name: n}
		}
	}
	c.routes.Store(&m)
}

// lookup returns the named route, adding it if it is unknown.
func (c *Controller) lookup(name string) *route {
	if r := (*c.routes.Load())[name]; r != nil {
		return r
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.routes.Load()
	if r := old[name]; r != nil {
		return r
	}
	m := make(map[string]*route, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	r := &route{name: name}
	m[name] = r
	c.routes.Store(&m)
	return r
}

// Observe feeds one observation of a route's signals, taken at now, and
// updates its tier; an unknown route becomes known. It also ends a pin whose
// TTL has passed. Observations of one route must come in time order, about
// once a second (a run of observations is as continuous as they are).
func (c *Controller) Observe(name string, s Signals, now time.Time) {
	r := c.lookup(name)
	r.mu.Lock()
	defer r.mu.Unlock()
	th := c.th.Load()
	r.signals = s
	r.raw, r.why = th.trigger(s)
	r.h.step(r.raw, now, th.EnterAfter, th.ExitAfter)
	why := "signals"
	if r.pinned && !r.pinUntil.IsZero() && !now.Before(r.pinUntil) {
		r.pinned, why = false, "pin expired"
	}
	c.settle(r, now, why)
}

// Pin holds the route at tier for ttl, whatever its signals say; ttl ≤ 0
// pins until Unpin. The route keeps observing underneath, so when the pin
// ends it takes the tier its signals earned. The pin ends at the route's
// first observation at or after its expiry (within one interval with Run).
func (c *Controller) Pin(name string, tier Tier, ttl time.Duration) error {
	return c.PinWithReason(name, tier, ttl, "")
}

// PinWithReason is Pin with the pin's reason, which RouteStatus shows (and
// the log records) while the pin lasts.
func (c *Controller) PinWithReason(name string, tier Tier, ttl time.Duration, reason string) error {
	if !tier.Valid() {
		return fmt.Errorf("degrade: pin %q to %d: %w", name, tier, ErrBadTier)
	}
	now := c.clock.Now()
	r := c.lookup(name)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pinned, r.pin, r.pinUntil, r.pinReason = true, tier, time.Time{}, reason
	if ttl > 0 {
		r.pinUntil = now.Add(ttl)
	}
	c.settle(r, now, "pin")
	return nil
}

// Unpin ends the route's pin, if any; the route takes the tier its signals
// earned at once.
func (c *Controller) Unpin(name string) {
	r := (*c.routes.Load())[name]
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pinned {
		r.pinned, r.pinReason = false, ""
		c.settle(r, c.clock.Now(), "unpin")
	}
}

// settle publishes the route's effective tier, and logs and reports a
// change. r.mu must be held.
func (c *Controller) settle(r *route, now time.Time, why string) {
	to := r.h.tier
	if r.pinned {
		to = r.pin
	}
	from := Tier(r.tier.Load())
	if from == to {
		if why == "pin" || why == "unpin" || why == "pin expired" {
			c.log.Info().Str("route", r.name).Str("tier", to.String()).Str("reason", why).
				Time("pinned_until", r.pinUntil).Str("pin_reason", r.pinReason).Msg("degrade tier pin changed")
		}
		return
	}
	r.tier.Store(uint32(to))
	r.since = now
	ev := c.log.Info()
	if to > from && !r.pinned {
		ev = c.log.Warn()
	}
	ev.Str("route", r.name).Str("from", from.String()).Str("to", to.String()).Str("reason", why).
		Bool("pinned", r.pinned).Str("pin_reason", r.pinReason).Str("signals_tier", r.raw.String()).Float64("ready", r.signals.Ready).
		Float64("breaker_open", r.signals.BreakerOpen).Float64("error_ratio", r.signals.ErrorRatio).
		Dur("ttft_p95", r.signals.TTFTp95).Msg("degrade tier changed")
	if c.onChange != nil {
		c.onChange(r.name, from, to, r.pinned)
	}
}

// Run observes every known route through the SignalSource once per interval
// (the first time at once) until ctx is done, then returns ctx's error. It
// returns ErrNoSource at once if the Controller has no source.
func (c *Controller) Run(ctx context.Context) error {
	if c.src == nil {
		return fmt.Errorf("degrade: run: %w", ErrNoSource)
	}
	tick.Every(ctx, c.clock, func() time.Duration { return time.Duration(c.interval.Load()) }, func() {
		now := c.clock.Now()
		for name := range *c.routes.Load() {
			c.Observe(name, c.src(name), now)
		}
	})
	return ctx.Err()
}
