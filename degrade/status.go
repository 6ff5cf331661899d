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
	// PinReason is what the pin's author gave as its reason ("" if none).
	PinReason string `json:"pin_reason,omitempty"`
	// Reason says in words why the route is at Tier: its pin, the signal
	// condition that holds, or the hysteresis that keeps it there; "" at
	// TierNormal with nothing pending.
	Reason  string  `json:"reason,omitempty"`
	Signals Signals `json:"signals"`
}

// Status returns the state of the named route, and false if it is unknown.
func (c *Controller) Status(name string) (RouteStatus, bool) {
	r := (*c.routes.Load())[name]
	if r == nil {
		return RouteStatus{}, false
	}
	return r.status(c.th.Load()), true
}

// Statuses returns the state of every known route, by name. It allocates;
// call it from the admin path.
func (c *Controller) Statuses() []RouteStatus {
	m := *c.routes.Load()
	th := c.th.Load()
	out := make([]RouteStatus, 0, len(m))
	for _, r := range m {
		out = append(out, r.status(th))
	}
	slices.SortFunc(out, func(a, b RouteStatus) int { return strings.Compare(a.Route, b.Route) })
	return out
}

func (r *route) status(th *Thresholds) RouteStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := RouteStatus{Route: r.name, Tier: Tier(r.tier.Load()), Auto: r.h.tier, SignalsTier: r.raw,
		Pinned: r.pinned, Since: r.since, Signals: r.signals}
	if r.pinned {
		st.PinnedUntil, st.PinReason = r.pinUntil, r.pinReason
	}
	st.Reason = r.reason(th)
	return st
}

// reason is RouteStatus.Reason. r.mu must be held.
func (r *route) reason(th *Thresholds) string {
	if r.pinned {
		s := "pinned by the admin API"
		if r.pinReason != "" {
			s += ": " + r.pinReason
		}
		return s
	}
	raw, cond := r.raw, th.explain(r.signals, r.why)
	switch {
	case raw == r.h.tier && raw == TierNormal:
		return ""
	case raw == r.h.tier:
		return cond
	case raw > r.h.tier:
		return "signals at " + raw.String() + " (" + cond + "); entered once they hold for " + th.EnterAfter.String()
	}
	s := "holding " + r.h.tier.String() + " until the signals stay at " + raw.String() + " for " + th.ExitAfter.String()
	if cond != "" {
		s += " (" + cond + ")"
	}
	return s
}
