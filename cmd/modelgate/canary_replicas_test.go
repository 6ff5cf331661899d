//go:build !race

// Built without -race and run in make test's second pass (its name has
// "Restart"): with three daemons each subscribing in the same process,
// nacos-sdk-go's Subscribe races with its own push handler over the
// instance cache (the SDK race of
// docs/decisions/0002-nacos-restart-tests-without-race.md).

package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/discovery/nacos"
	"github.com/modelgate/modelgate/internal/mockllm"
)

// TestCanaryTwoDaemonsAndRestart: a rollout published in a Nacos Config
// entry starts on two daemons; only one gets traffic, judges a failing v2
// and rolls it back; the other stops its canary within 2 s; a third daemon
// started afterwards stays rolled back.
func TestCanaryTwoDaemonsAndRestart(t *testing.T) {
	lat := mockllm.Config{Latency: 5 * time.Millisecond}
	bad := lat
	bad.FailRate, bad.Seed = 0.1, 9
	cfg, group, _, v2 := canarySetup(t, lat, bad, nil)
	cfg.CanarySync = &NacosConfigRef{DataID: "canary-" + group + ".yaml"}
	pub, err := nacos.DialConfig(nacos.ClientConfig{Servers: cfg.Discovery.Nacos.Servers})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	entry := "chat:\n  version: v2\n  baseline: v1\n  steps: [10, 50, 100]\n  step_after: 1s\n  min_requests: 100\n" +
		"  thresholds: {ttft_slack: 100ms, tokens_per_second_factor: 0.5}\n"
	if err := pub.Publish(cfg.CanarySync.DataID, group, entry); err != nil {
		t.Fatal(err)
	}
	// Each daemon has a config of its own (normalize writes into it).
	another := func() *Config {
		c := nacosConfig(cfg.Discovery.Nacos.Servers[0], group, "qwen", "keep")
		c.Router.AccessLog.Disabled = true
		c.CanarySync = &NacosConfigRef{DataID: cfg.CanarySync.DataID}
		return c
	}
	a := startDaemon(t, cfg)
	b := startDaemon(t, another())
	for _, d := range []*testDaemon{a, b} {
		waitBoth(t, d, group)
		st := waitCanary(t, d.admin, 10*time.Second, func(s canary.Status) bool { return s.State == canary.Running })
		if st.Origin != canary.FromSync || st.Share != 10 {
			t.Fatalf("rollout from Nacos: %+v", st)
		}
	}
	dr := drive(t, a, 50, false)
	sa := waitCanary(t, a.admin, 60*time.Second, func(s canary.Status) bool { return s.State != canary.Running })
	dr.stop()
	if sa.State != canary.Aborted || sa.LastVerdict == nil {
		t.Fatalf("a: %s %+v", sa.State, sa.LastVerdict)
	}
	sb := waitCanary(t, b.admin, 5*time.Second, func(s canary.Status) bool { return s.State != canary.Running })
	took := time.Since(sa.LastVerdict.At)
	var followed time.Time
	for _, ev := range sb.Events {
		if ev.Kind == "followed" {
			followed = ev.At
		}
	}
	lag := followed.Sub(sa.LastVerdict.At)
	t.Logf("a rolled back: %s; b followed %v after the verdict (seen by the test after %v): %s", sa.LastVerdict.Summary(), lag, took, sb.Reason)
	if sb.State != canary.Aborted || sb.Share != 0 || lag <= 0 || lag > 2*time.Second || !strings.Contains(sb.Reason, "error_ratio") {
		t.Fatalf("b: state %s share %v after %v: %s", sb.State, sb.Share, lag, sb.Reason)
	}
	before := v2.Requests()
	for range 30 {
		if _, err := chat(context.Background(), b.client(), "chat"); err != nil {
			t.Fatal(err)
		}
	}
	if n := v2.Requests() - before; n != 0 {
		t.Fatalf("b still sent %d requests to v2", n)
	}
	got, err := pub.Get(cfg.CanarySync.DataID, group)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := canary.ParseDocument(got)
	if err != nil || doc["chat"].State != canary.Aborted || !strings.Contains(doc["chat"].By, a.api) {
		t.Fatalf("Nacos entry: %v\n%s", err, got)
	}
	c := startDaemon(t, another())
	if st := canaryStatus(t, c.admin); st.State != canary.Aborted || st.Share != 0 {
		t.Fatalf("a daemon started after the rollback: %s at %v %%", st.State, st.Share)
	}
}
