package degrade

import (
	"slices"
	"strings"
	"time"
)

// RouteStatus is a route's degradation state, for the admin API.
type RouteStatus struct {
	Route       string    `json:"route"`
	Tier        Tier      `json:"tier"`         // effective: the pin, else Auto
	Auto        Tier      `json:"auto"`         // earned by the signals, with hysteresis
	SignalsTier Tier      `json:"signals_tier"` // the last signals alone, no hysteresis
	Pinned      bool      `json:"pinned"`
	PinnedUntil time.Time `json:"pinned_until,omitzero"` // zero: until unpinned
	Since       time.Time `json:"since,omitzero"`        // when Tier last changed
	Signals     Signals   `json:"signals"`
}

// Status returns the state of the named route, and false if it is unknown.
func (c *Controller) Status(name string) (RouteStatus, bool) {
	r := (*c.routes.Load())[name]
	if r == nil {
		return RouteStatus{}, false
	}
	return r.status(), true
}

// Statuses returns the state of every known route, by name. It allocates;
// call it from the admin path.
func (c *Controller) Statuses() []RouteStatus {
	m := *c.routes.Load()
	out := make([]RouteStatus, 0, len(m))
	for _, r := range m {
		out = append(out, r.status())
	}
	slices.SortFunc(out, func(a, b RouteStatus) int { return strings.Compare(a.Route, b.Route) })
	return out
}

func (r *route) status() RouteStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := RouteStatus{Route: r.name, Tier: Tier(r.tier.Load()), Auto: r.h.tier, SignalsTier: r.raw,
		Pinned: r.pinned, Since: r.since, Signals: r.signals}
	if r.pinned {
		st.PinnedUntil = r.pinUntil
	}
	return st
}
