package degrade

import "time"

// run is a stretch of consecutive observations for which a condition held.
type run struct {
	on    bool
	since time.Time
}

// hold extends the run while ok holds and ends it otherwise.
func (r *run) hold(ok bool, now time.Time) {
	switch {
	case !ok:
		r.on = false
	case !r.on:
		r.on, r.since = true, now
	}
}

// lasted reports whether the run is on and has lasted at least d.
func (r *run) lasted(d time.Duration, now time.Time) bool {
	return r.on && now.Sub(r.since) >= d
}

// hysteresis turns instantaneous tiers into a stable one. It is not safe for
// concurrent use; the Controller holds the route's lock around it.
type hysteresis struct {
	tier Tier
	// up[t]: the signals have been at tier t or above; down[t]: at t or
	// below.
	up, down [NumTiers]run
}

// step records the instantaneous tier raw observed at now and returns the
// stable tier. It enters the highest tier above the current one whose run
// has lasted enter; failing that, it drops to the lowest tier below whose
// run has lasted exit.
func (h *hysteresis) step(raw Tier, now time.Time, enter, exit time.Duration) Tier {
	for t := range Tier(NumTiers) {
		h.up[t].hold(raw >= t, now)
		h.down[t].hold(raw <= t, now)
	}
	for t := Tier(NumTiers - 1); t > h.tier; t-- {
		if h.up[t].lasted(enter, now) {
			h.tier = t
			return t
		}
	}
	for t := range h.tier {
		if h.down[t].lasted(exit, now) {
			h.tier = t
			break
		}
	}
	return h.tier
}
