// The SDK's naming client races with itself when it connects (a push and
// the re-subscription on connect sort the same cached instance list), and
// this test runs SDK subscribers in its own process: it is built without
// -race and run in make test's second pass, like the Nacos restart tests
// (docs/decisions/0002-nacos-restart-tests-without-race.md).

//go:build !race

package bench

import (
	"testing"
	"time"

	"github.com/modelgate/modelgate/bench/scale"
	"github.com/modelgate/modelgate/internal/nacostest"
)

// TestSmokeScale runs `make bench-scale` in small against the test Nacos:
// 50 instances in 5 services, a 3-second idle window, a burst of 10
// changes, and the same burst again with 2 more subscribers.
func TestSmokeScale(t *testing.T) {
	start := time.Now()
	rep, err := scale.Run(scale.Options{
		NacosAddr: nacostest.Addr(t), Services: 5, PerService: 10, Changes: 10, Registrars: 2, Subscribers: 2,
		Idle: 3 * time.Second, Settle: time.Second, Bins: bins(t), Dir: t.TempDir(), Log: logWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("smoke scale run in %v:\n%s", time.Since(start).Round(time.Second), rep.Markdown())
	if rep.Instances != 50 || rep.Changes != 10 {
		t.Errorf("%d instances, %d changes", rep.Instances, rep.Changes)
	}
	if rep.FullPool <= 0 || rep.FullPool > 2*time.Minute || rep.Ready > rep.FullPool {
		t.Errorf("ready after %v, full pool after %v", rep.Ready, rep.FullPool)
	}
	for _, b := range []scale.BurstResult{rep.Burst, rep.BurstFanout} {
		if b.ConvergeLast < 0 || b.ConvergeLast > time.Minute || b.ConvergeBurst < b.ConvergeLast || b.Calls == 0 {
			t.Errorf("burst: convergence %v after the last change, %v after the first, %d reads", b.ConvergeLast, b.ConvergeBurst, b.Calls)
		}
	}
	if rep.FanoutPushes == 0 || rep.FanoutReads == 0 {
		t.Errorf("the 2 more subscribers got %d pushes and made %d reads in the second burst", rep.FanoutPushes, rep.FanoutReads)
	}
	if rep.RSS <= 0 || rep.RSSBase <= 0 || rep.Heap <= 0 {
		t.Errorf("RSS %d, empty group %d, heap %d", rep.RSS, rep.RSSBase, rep.Heap)
	}
	// Sanity, not targets: the listing alone is < 1 call a second.
	if rep.IdleCalls <= 0 || rep.IdleCalls > 10 || rep.IdleCPU < 0 || rep.IdleCPU > 1 {
		t.Errorf("idle: %v calls/s, %v cores", rep.IdleCalls, rep.IdleCPU)
	}
}
