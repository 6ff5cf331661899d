package degrade

import (
	"strconv"
	"time"
)

// Signals is one observation of a route's health, taken about once a second.
// The zero value means no instance is ready: a route whose signals say
// nothing is treated as down (TierCache), never as healthy.
type Signals struct {
	// Ready is the fraction of the route's instances that are usable
	// (healthy, enabled, not draining), from 0 to 1.
	Ready float64 `json:"ready"`
	// BreakerOpen is the fraction of the route's instances whose breaker is
	// open, from 0 to 1.
	BreakerOpen float64 `json:"breaker_open"`
	// InFlight is the number of requests the route's instances are serving.
	InFlight int `json:"in_flight"`
	// Capacity is the sum of the instances' max_concurrency; 0 means
	// unknown, and then InFlight triggers nothing.
	Capacity int `json:"capacity"`
	// Requests is the number of requests behind ErrorRatio and TTFTp95 (the
	// first result of Window.Snapshot). Below Thresholds.MinRequests both
	// are ignored, so three failures of a quiet route do not degrade it.
	Requests int `json:"requests"`
	// ErrorRatio is upstream errors over requests in the last window.
	ErrorRatio float64 `json:"error_ratio"`
	// TTFTp95 is the 95th percentile of time to first token in the last
	// window; 0 when nothing was measured.
	TTFTp95 time.Duration `json:"ttft_p95"`
	// TTFTSLO is the route's objective for time to first token; 0 means
	// none, and then TTFTp95 triggers nothing.
	TTFTSLO time.Duration `json:"ttft_slo"`
}

// Thresholds say when each tier's condition holds and how long it must hold.
// A tier's condition holds when any of its triggers does; the triggers of a
// tier are independent of the tiers below. A zero field takes its default;
// a negative ratio disables its trigger.
type Thresholds struct {
	// ShedErrorRatio triggers TierShed when ErrorRatio ≥ it. Default 0.2.
	ShedErrorRatio float64
	// ShedBreakerOpen triggers TierShed when BreakerOpen ≥ it. Default 0.5.
	ShedBreakerOpen float64
	// TierShed is also triggered when TTFTp95 > TTFTSLO (both set).

	// CapInFlight triggers TierCap when InFlight ≥ it × Capacity (Capacity
	// known). Default 0.9.
	CapInFlight float64
	// CapBreakerOpen triggers TierCap when BreakerOpen ≥ it. Default 0.75.
	CapBreakerOpen float64

	// CacheReady triggers TierCache when Ready ≤ it. Default 0: no instance
	// is usable.
	CacheReady float64
	// CacheBreakerOpen triggers TierCache when BreakerOpen ≥ it. Default 1:
	// every breaker is open.
	CacheBreakerOpen float64
	// CacheErrorRatio triggers TierCache when ErrorRatio ≥ it. Default 0.9.
	CacheErrorRatio float64

	// MinRequests is how many requests the window must hold before
	// ErrorRatio and TTFTp95 count. Default 10; negative means 0.
	MinRequests int

	// EnterAfter is how long a tier's condition (or a higher one's) must
	// hold before the route enters it. Going up can skip tiers: a route in
	// TierNormal whose TierCache condition has held for EnterAfter goes
	// straight to TierCache. Default 3s; negative means at once.
	EnterAfter time.Duration
	// ExitAfter is how long the signals must have stayed at or below a
	// lower tier's condition before the route drops to it; the route drops
	// to the lowest tier that qualifies, in one step. Default 15s; negative
	// means at once.
	ExitAfter time.Duration
}

// DefaultThresholds returns the thresholds every zero field of a Thresholds
// takes.
func DefaultThresholds() Thresholds {
	return Thresholds{
		ShedErrorRatio: 0.2, ShedBreakerOpen: 0.5,
		CapInFlight: 0.9, CapBreakerOpen: 0.75,
		CacheReady: 0, CacheBreakerOpen: 1, CacheErrorRatio: 0.9,
		MinRequests: 10, EnterAfter: 3 * time.Second, ExitAfter: 15 * time.Second,
	}
}

// withDefaults fills the zero fields of t with the defaults.
func (t Thresholds) withDefaults() Thresholds {
	d := DefaultThresholds()
	for _, f := range []struct{ v, def *float64 }{
		{&t.ShedErrorRatio, &d.ShedErrorRatio}, {&t.ShedBreakerOpen, &d.ShedBreakerOpen},
		{&t.CapInFlight, &d.CapInFlight}, {&t.CapBreakerOpen, &d.CapBreakerOpen},
		{&t.CacheBreakerOpen, &d.CacheBreakerOpen}, {&t.CacheErrorRatio, &d.CacheErrorRatio},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	if t.MinRequests == 0 {
		t.MinRequests = d.MinRequests
	}
	if t.EnterAfter == 0 {
		t.EnterAfter = d.EnterAfter
	}
	if t.ExitAfter == 0 {
		t.ExitAfter = d.ExitAfter
	}
	return t
}

// Evaluate returns the highest tier whose condition holds for s right now,
// with no hysteresis; t's zero fields are read as their defaults. The
// Controller applies EnterAfter and ExitAfter on top of it.
func (t Thresholds) Evaluate(s Signals) Tier {
	th := t.withDefaults()
	return th.evaluate(s)
}

// evaluate is Evaluate on thresholds with defaults filled.
func (t *Thresholds) evaluate(s Signals) Tier {
	tier, _ := t.trigger(s)
	return tier
}

// trigger names the condition behind a tier, for the admin API.
type trigger uint8

const (
	trigNone trigger = iota
	trigNotReady
	trigAllBreakers
	trigCacheErrors
	trigInFlight
	trigCapBreakers
	trigShedBreakers
	trigShedErrors
	trigTTFT
)

// trigger returns the highest tier whose condition holds for s and the
// first of its triggers that holds.
func (t *Thresholds) trigger(s Signals) (Tier, trigger) {
	windowed := s.Requests >= t.MinRequests
	errorsAbove := func(limit float64) bool { return windowed && atLeast(s.ErrorRatio, limit) }
	switch {
	case s.Ready <= t.CacheReady && t.CacheReady >= 0:
		return TierCache, trigNotReady
	case atLeast(s.BreakerOpen, t.CacheBreakerOpen):
		return TierCache, trigAllBreakers
	case errorsAbove(t.CacheErrorRatio):
		return TierCache, trigCacheErrors
	case s.Capacity > 0 && atLeast(float64(s.InFlight), t.CapInFlight*float64(s.Capacity)):
		return TierCap, trigInFlight
	case atLeast(s.BreakerOpen, t.CapBreakerOpen):
		return TierCap, trigCapBreakers
	case atLeast(s.BreakerOpen, t.ShedBreakerOpen):
		return TierShed, trigShedBreakers
	case errorsAbove(t.ShedErrorRatio):
		return TierShed, trigShedErrors
	case windowed && s.TTFTSLO > 0 && s.TTFTp95 > s.TTFTSLO:
		return TierShed, trigTTFT
	}
	return TierNormal, trigNone
}

// Explain says in words which condition of t puts s at the tier Evaluate
// returns, such as "error ratio 25.0 % ≥ 20.0 %"; "" for TierNormal.
func (t Thresholds) Explain(s Signals) string {
	th := t.withDefaults()
	_, tr := th.trigger(s)
	return th.explain(s, tr)
}

func (t *Thresholds) explain(s Signals, tr trigger) string {
	pct := func(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + " %" }
	switch tr {
	case trigNotReady:
		return "usable instances " + pct(s.Ready) + " ≤ " + pct(t.CacheReady)
	case trigAllBreakers:
		return "breakers open " + pct(s.BreakerOpen) + " ≥ " + pct(t.CacheBreakerOpen)
	case trigCacheErrors:
		return "error ratio " + pct(s.ErrorRatio) + " ≥ " + pct(t.CacheErrorRatio)
	case trigInFlight:
		return "in flight " + strconv.Itoa(s.InFlight) + " ≥ " + pct(t.CapInFlight) + " of capacity " + strconv.Itoa(s.Capacity)
	case trigCapBreakers:
		return "breakers open " + pct(s.BreakerOpen) + " ≥ " + pct(t.CapBreakerOpen)
	case trigShedBreakers:
		return "breakers open " + pct(s.BreakerOpen) + " ≥ " + pct(t.ShedBreakerOpen)
	case trigShedErrors:
		return "error ratio " + pct(s.ErrorRatio) + " ≥ " + pct(t.ShedErrorRatio)
	case trigTTFT:
		return "TTFT p95 " + s.TTFTp95.Round(time.Millisecond).String() + " > SLO " + s.TTFTSLO.String()
	}
	return ""
}

// atLeast reports v ≥ limit for an enabled (non-negative) limit.
func atLeast(v, limit float64) bool { return limit >= 0 && v >= limit }
