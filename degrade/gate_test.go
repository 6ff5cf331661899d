package degrade_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelgate/modelgate/degrade"
	"github.com/modelgate/modelgate/degrade/quota"
	"github.com/modelgate/modelgate/internal/fakeclock"
)

// fleet is a Fleet whose one service has a settable number of usable
// instances out of two.
type fleet struct{ usable atomic.Int32 }

func (f *fleet) ServiceLoad(string) (instances, usable, breakerOpen, inFlight, capacity int) {
	return 2, int(f.usable.Load()), 0, 0, 0
}

// runGate runs g's controller on clk and returns a function that moves the
// clock one interval and waits until that observation is done.
func runGate(t *testing.T, g *degrade.Gate, clk *fakeclock.Clock) (step func(n int)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = g.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the controller's first observation", func() bool { return clk.Pending() == 1 })
	return func(n int) {
		for range n {
			clk.Advance(time.Second)
			waitFor(t, "an observation", func() bool { return clk.Pending() == 1 })
		}
	}
}

// TestGateTierCacheOnlyAfterUsable: on a fake clock, a route whose service
// has had no usable instance since start stays in TierNormal however long;
// once it has had one and loses it, it enters TierCache after EnterAfter.
func TestGateTierCacheOnlyAfterUsable(t *testing.T) {
	clk := fakeclock.New(t0)
	f := &fleet{}
	g, err := degrade.NewGate(f, degrade.Config{Routes: []degrade.Route{{Name: "chat"}}}, degrade.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	step := runGate(t, g, clk)
	step(20)
	if tier := g.Tier("chat"); tier != degrade.TierNormal {
		t.Fatalf("never usable, after 20 s: %v", tier)
	}
	f.usable.Store(2)
	step(2)
	f.usable.Store(0)
	step(2)
	if tier := g.Tier("chat"); tier != degrade.TierNormal {
		t.Fatalf("2 s after losing its instances: %v, want normal until EnterAfter (3 s)", tier)
	}
	step(2)
	if tier := g.Tier("chat"); tier != degrade.TierCache {
		t.Fatalf("4 s after losing its instances: %v, want cache", tier)
	}
	// A reload starts the route afresh: no usable instance since, so it
	// leaves tier 3 once the signals have been clear for ExitAfter (15 s).
	if err := g.Reload(degrade.Config{Routes: []degrade.Route{{Name: "chat"}}}); err != nil {
		t.Fatal(err)
	}
	step(16)
	if tier := g.Tier("chat"); tier != degrade.TierNormal {
		t.Fatalf("16 s after a reload with no instance: %v, want normal", tier)
	}
}

func detRequest(start time.Time) *degrade.Request {
	return &degrade.Request{Route: "chat", API: "chat", Deterministic: true, Start: start,
		Body: []byte(`{"model":"chat","temperature":0,"messages":[]}`)}
}

// TestGateCacheDisabledOnReload: cache.disabled applies at the next Admit,
// both ways; a sampled request is never keyed.
func TestGateCacheDisabledOnReload(t *testing.T) {
	cfg := degrade.Config{Routes: []degrade.Route{{Name: "chat"}}}
	g, err := degrade.NewGate(nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	serve := func() degrade.Verdict {
		d, tk := g.Admit(context.Background(), detRequest(t0))
		tk.Settle(degrade.Outcome{Status: 200, Attempts: 1, Reply: []byte(`{"ok":true}`), ContentType: "application/json"})
		return d.Verdict
	}
	if v := serve(); v != degrade.Forward {
		t.Fatalf("first request: %v", v)
	}
	if v := serve(); v != degrade.Cached {
		t.Fatalf("second deterministic request: %v, want cached", v)
	}
	if g.CacheKeys("chat", false) {
		t.Fatal("a sampled chat request would be keyed under the default policy")
	}
	cfg.Cache.Disabled = true
	if err := g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if v := serve(); v != degrade.Forward || g.CacheKeys("chat", true) {
		t.Fatalf("cache disabled by reload: %v, keys %v", v, g.CacheKeys("chat", true))
	}
	cfg.Cache.Disabled = false
	if err := g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	serve()
	if v := serve(); v != degrade.Cached {
		t.Fatalf("cache enabled again: %v, want cached", v)
	}
}

// TestGateCancelsRefusedReservations: a request that never reached
// upstream gives its reservation back; one that did settles its real
// usage.
func TestGateCancelsRefusedReservations(t *testing.T) {
	g, err := degrade.NewGate(nil, degrade.Config{Routes: []degrade.Route{{Name: "chat", DefaultMaxTokens: 900}}})
	if err != nil {
		t.Fatal(err)
	}
	req := &degrade.Request{Route: "chat", API: "chat", Consumer: "team", Limits: quota.Limits{TPM: 1000}, PromptTokens: 10, Start: t0}
	for i := range 5 { // each reserves 910 of 1,000; each is refused by no instance
		d, tk := g.Admit(context.Background(), req)
		if d.Verdict != degrade.Forward {
			t.Fatalf("request %d after refused ones: %v", i, d.Verdict)
		}
		tk.Settle(degrade.Outcome{Status: 503})
	}
	d, tk := g.Admit(context.Background(), req)
	tk.Settle(degrade.Outcome{Status: 200, Attempts: 1, Tokens: 950})
	if d.Verdict != degrade.Forward {
		t.Fatal(d.Verdict)
	}
	if d, _ := g.Admit(context.Background(), req); d.Verdict != degrade.OverQuota {
		t.Fatalf("after 950 real tokens of 1,000: %v, want over quota", d.Verdict)
	}
}

// TestGateConfigIsCopied: neither the Config given to NewGate nor the one
// Config returns shares memory with the Gate's.
func TestGateConfigIsCopied(t *testing.T) {
	cfg := degrade.Config{Routes: []degrade.Route{{Name: "chat"}}, Cache: degrade.CacheConfig{Always: []string{"embeddings"}}}
	g, err := degrade.NewGate(nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Routes[0].Name = "changed"
	cfg.Cache.Always[0] = "chat"
	got := g.Config()
	got.Routes[0].Class = degrade.Sheddable
	if c := g.Config(); c.Routes[0].Name != "chat" || c.Routes[0].Class != degrade.Standard || c.Cache.Always[0] != "embeddings" {
		t.Fatalf("config in force changed: %+v", c)
	}
	if err := g.Reload(degrade.Config{Routes: []degrade.Route{{Name: "a"}, {Name: "a"}}}); err == nil {
		t.Fatal("a reload with a duplicate route was accepted")
	}
	if c := g.Config(); len(c.Routes) != 1 || c.Routes[0].Name != "chat" {
		t.Fatalf("a refused reload changed the config: %+v", c.Routes)
	}
}
