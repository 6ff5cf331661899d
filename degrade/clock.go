package degrade

import "time"

// Clock is the time source of a Controller and a Limiter. Tests inject a
// fake one to drive hysteresis windows and queue deadlines without sleeping.
// Implementations must be safe for concurrent use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed and returns
	// a function that cancels the call, reporting whether it did so before
	// f started (the contract of time.AfterFunc and Timer.Stop).
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// systemClock is the wall clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}
