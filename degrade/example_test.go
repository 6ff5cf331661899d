package degrade_test

import (
	"context"
	"fmt"
	"time"

	"github.com/modelgate/modelgate/degrade"
	"github.com/modelgate/modelgate/degrade/quota"
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

// staticFleet is a Fleet of one service with two usable instances.
type staticFleet struct{}

func (staticFleet) ServiceLoad(string) (instances, usable, breakerOpen, inFlight, capacity int) {
	return 2, 2, 0, 0, 8
}

// A program admits each request through a Gate and settles it with what
// happened; no router is needed. Here a consumer with 2,000 tokens per
// minute sends requests without max_tokens: each reserves the route's
// default_max_tokens and settles with its real usage, until the quota runs
// out.
func ExampleGate() {
	gate, err := degrade.NewGate(staticFleet{}, degrade.Config{
		Routes: []degrade.Route{{Name: "chat", Service: "qwen", DefaultMaxTokens: 500}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		d, ticket := gate.Admit(context.Background(), &degrade.Request{
			Route: "chat", API: "chat", Consumer: "team-a", Limits: quota.Limits{TPM: 2000},
			PromptTokens: 20, Start: start,
		})
		switch d.Verdict {
		case degrade.Forward:
			// ... send upstream; the reply's usage says 420 tokens ...
			ticket.Settle(degrade.Outcome{Status: 200, Attempts: 1, Tokens: 420})
			fmt.Println(i, "forwarded")
		case degrade.OverQuota:
			ticket.Settle(degrade.Outcome{Status: 429})
			fmt.Println(i, "429, retry after", d.RetryAfter.Round(time.Second))
		}
	}
	// Output:
	// 0 forwarded
	// 1 forwarded
	// 2 forwarded
	// 3 forwarded
	// 4 429, retry after 6s
}
