package balancer_test

import (
	"fmt"
	"testing"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/balancer/internal/lbtest"
	"github.com/modelgate/modelgate/discovery"
)

func canaryPool() *discovery.Pool {
	return lbtest.Pool(lbtest.Inst(1, 1, "version", "v1"), lbtest.Inst(2, 3, "version", "v1"),
		lbtest.Inst(3, 1, "version", "v2"), lbtest.Inst(4, 1, "version", "v3"))
}

// TestCanaryShare: the canary takes its share whatever the route's split
// says, and the rest divides as the split says.
func TestCanaryShare(t *testing.T) {
	for _, tt := range []struct {
		name  string
		split map[string]int
		share int
		want  map[string]float64
	}{
		{"split without the canary", map[string]int{"v1": 100}, 1000, map[string]float64{"v1": 0.9, "v2": 0.1}},
		{"split with the canary", map[string]int{"v1": 50, "v2": 50}, 2500, map[string]float64{"v1": 0.75, "v2": 0.25}},
		{"rest by split", map[string]int{"v1": 75, "v3": 25}, 2000, map[string]float64{"v1": 0.6, "v2": 0.2, "v3": 0.2}},
		{"share 0", map[string]int{"v1": 50, "v2": 50}, 0, map[string]float64{"v1": 1}},
		{"share 100 %", map[string]int{"v1": 100}, balancer.CanaryScale, map[string]float64{"v2": 1}},
		{"by Nacos weight", nil, 5000, map[string]float64{"v1": 0.5 * 4 / 5, "v2": 0.5, "v3": 0.5 / 5}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, pol := range policies {
				b := balancer.New(canaryPool(), chat(tt.split), balancer.WithPolicy(pol), balancer.WithRand(lbtest.Rand(7)))
				b.SetCanary("chat", balancer.Canary{Version: "v2", Share: tt.share})
				got := lbtest.Count(t, b, &balancer.Request{Route: "chat"}, picks, ok, lbtest.ByVersion)
				for _, v := range []string{"v1", "v2", "v3"} {
					lbtest.Share(t, pol.Name()+" "+v, got[v], picks, tt.want[v], 0.02)
				}
			}
		})
	}
}

func TestCanaryRemoved(t *testing.T) {
	b := balancer.New(canaryPool(), chat(map[string]int{"v1": 100}), balancer.WithRand(lbtest.Rand(8)))
	b.SetCanary("chat", balancer.Canary{Version: "v2", Share: 5000})
	if c, ok := b.CanaryOf("chat"); !ok || c.Share != 5000 {
		t.Fatalf("CanaryOf = %+v %v", c, ok)
	}
	b.SetCanary("chat", balancer.Canary{})
	if _, ok := b.CanaryOf("chat"); ok {
		t.Fatal("overlay still there")
	}
	got := lbtest.Count(t, b, &balancer.Request{Route: "chat"}, 1000, ok, lbtest.ByVersion)
	if got["v1"] != 1000 {
		t.Fatalf("after removal: %v", got)
	}
}

// TestCanaryWithoutBaseline: with no other version available the overlay
// does not apply and the canary version serves, as a split would.
func TestCanaryWithoutBaseline(t *testing.T) {
	pool := lbtest.Pool(lbtest.Inst(3, 1, "version", "v2"))
	b := balancer.New(pool, chat(nil))
	b.SetCanary("chat", balancer.Canary{Version: "v2", Share: 0})
	if p, err := b.Pick(&balancer.Request{Route: "chat"}); err != nil || p.Instance.Version != "v2" {
		t.Fatalf("pick = %v, %v", p.Instance, err)
	}
}

// TestCanaryStickyMonotone: as the canary's share rises step by step, a
// sticky key only ever moves from its baseline version to the canary, never
// back, and never between baseline versions; at share 0 every key is back
// on its baseline version.
func TestCanaryStickyMonotone(t *testing.T) {
	pool := canaryPool()
	split := chat(map[string]int{"v1": 75, "v3": 25})
	b := balancer.New(pool, split, balancer.WithRand(lbtest.Rand(9)))
	other := balancer.New(pool, split) // another replica agrees
	const keys = 4000
	base := make([]string, keys) // each key's version without a canary
	onCanary := make([]bool, keys)
	version := func(bb *balancer.Balancer, k int) string {
		p, err := bb.Pick(&balancer.Request{Route: "chat", StickyKey: fmt.Sprint("user-", k)})
		if err != nil {
			t.Fatal(err)
		}
		p.Done(ok)
		return p.Instance.Version
	}
	for k := range keys {
		base[k] = version(b, k)
	}
	for _, pct := range []int{1, 5, 25, 50, 100} {
		share := pct * balancer.CanaryScale / 100
		b.SetCanary("chat", balancer.Canary{Version: "v2", Share: share})
		other.SetCanary("chat", balancer.Canary{Version: "v2", Share: share})
		moved := 0
		for k := range keys {
			v := version(b, k)
			if w := version(other, k); w != v {
				t.Fatalf("at %d %%: key %d on %s here, %s on the other replica", pct, k, v, w)
			}
			switch {
			case v == "v2":
				onCanary[k] = true
				moved++
			case onCanary[k]:
				t.Fatalf("at %d %%: key %d went back from v2 to %s", pct, k, v)
			case v != base[k]:
				t.Fatalf("at %d %%: key %d moved from %s to %s", pct, k, base[k], v)
			}
		}
		lbtest.Share(t, fmt.Sprint("keys on v2 at ", pct, " %"), moved, keys, float64(pct)/100, 0.02)
	}
	b.SetCanary("chat", balancer.Canary{Version: "v2", Share: 0}) // rollback
	for k := range keys {
		if v := version(b, k); v != base[k] {
			t.Fatalf("after rollback key %d on %s, was %s", k, v, base[k])
		}
	}
}
