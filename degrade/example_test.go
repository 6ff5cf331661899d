package degrade_test

import (
	"context"
	"fmt"
	"time"

	"github.com/modelgate/modelgate/degrade"
)

// A route whose every breaker is open reaches TierCache once the condition
// has held for EnterAfter, and leaves it once the signals have been healthy
// for ExitAfter.
func ExampleController() {
	ctl := degrade.NewController(nil, degrade.OnChange(func(route string, from, to degrade.Tier, pinned bool) {
		fmt.Printf("%s: %v -> %v\n", route, from, to)
	}))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	down := degrade.Signals{Ready: 1, BreakerOpen: 1}
	up := degrade.Signals{Ready: 1}
	for s := range 4 {
		ctl.Observe("chat", down, start.Add(time.Duration(s)*time.Second))
	}
	for s := range 16 {
		ctl.Observe("chat", up, start.Add(time.Duration(4+s)*time.Second))
	}
	fmt.Println(ctl.Tier("chat"))
	// Output:
	// chat: normal -> cache
	// chat: cache -> normal
	// normal
}

// A request in TierCap takes a slot of its route's Limiter, waiting in the
// queue until its deadline at most.
func ExampleLimiter() {
	l := degrade.NewLimiter(4, 64)
	release, waited, err := l.Acquire(context.Background(), degrade.Critical, time.Now().Add(2*time.Second))
	if err != nil {
		fmt.Println("503:", err) // ErrQueueFull, ErrQueueTimeout or the context's error
		return
	}
	defer release()
	fmt.Println("waited", waited, "in flight", l.Stats().InFlight)
	// Output: waited 0s in flight 1
}

// The router records every finished request of a route, and its signal
// source reads the window once a second.
func ExampleWindow() {
	w := degrade.NewWindow(10 * time.Second)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 20 {
		w.Record(now, i%4 == 0, 300*time.Millisecond)
	}
	s := degrade.Signals{Ready: 1, TTFTSLO: time.Second}
	s.Requests, s.ErrorRatio, s.TTFTp95 = w.Snapshot(now)
	fmt.Println(s.Requests, s.ErrorRatio, s.TTFTp95 >= 300*time.Millisecond, degrade.Thresholds{}.Evaluate(s))
	// Output: 20 0.25 true shed
}
