package balancer_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/balancer/internal/lbtest"
	"github.com/modelgate/modelgate/balancer/p2c"
	"github.com/modelgate/modelgate/balancer/random"
	"github.com/modelgate/modelgate/balancer/wrr"
	"github.com/modelgate/modelgate/discovery"
)

const picks = 20000

var ok = balancer.Result{Status: 200, Latency: 10 * time.Millisecond}

var policies = []balancer.Policy{p2c.New(), wrr.New(), random.New()}

func chat(split map[string]int) []balancer.Route {
	return []balancer.Route{{Name: "chat", Service: lbtest.Key, Split: split}}
}

func TestNacosWeights(t *testing.T) {
	pool := lbtest.Pool(lbtest.Inst(1, 1), lbtest.Inst(2, 2), lbtest.Inst(3, 3), lbtest.Inst(4, 4))
	for _, pol := range policies {
		t.Run(pol.Name(), func(t *testing.T) {
			b := balancer.New(pool, chat(nil), balancer.WithPolicy(pol), balancer.WithRand(lbtest.Rand(1)))
			got := lbtest.Count(t, b, &balancer.Request{Route: "chat"}, picks, ok, lbtest.ByID)
			if pol.Name() == p2c.Name {
				// p2c divides the score by the weight, so at equal load
				// heavier instances win more often; shares follow the
				// weights' order, not their ratio.
				for n := 2; n <= 4; n++ {
					if got[lbtest.ID(n)] <= got[lbtest.ID(n-1)] {
						t.Errorf("weight %d got %d picks, weight %d got %d", n, got[lbtest.ID(n)], n-1, got[lbtest.ID(n-1)])
					}
				}
				return
			}
			for n := 1; n <= 4; n++ {
				lbtest.Share(t, fmt.Sprint("weight ", n), got[lbtest.ID(n)], picks, float64(n)/10, 0.02)
			}
		})
	}
}

func TestVersionSplit(t *testing.T) {
	var ins []*discovery.Instance
	for n := 1; n <= 5; n++ {
		ins = append(ins, lbtest.Inst(n, float64(n), "version", "v1"))
	}
	ins = append(ins, lbtest.Inst(6, 1, "version", "v2"), lbtest.Inst(7, 5, "version", "v3"))
	pool := lbtest.Pool(ins...)
	for _, pol := range policies {
		t.Run(pol.Name(), func(t *testing.T) {
			b := balancer.New(pool, chat(map[string]int{"v1": 90, "v2": 10}), balancer.WithPolicy(pol),
				balancer.WithRand(lbtest.Rand(2)))
			got := lbtest.Count(t, b, &balancer.Request{Route: "chat"}, picks, ok, lbtest.ByVersion)
			lbtest.Share(t, "v2", got["v2"], picks, 0.10, 0.02)
			if got["v3"] != 0 {
				t.Errorf("v3 is not in the split but got %d picks", got["v3"])
			}
		})
	}
}

func TestSplitShareOfMissingVersionGoesToOthers(t *testing.T) {
	pool := lbtest.Pool(lbtest.Inst(1, 1, "version", "v1"), lbtest.Inst(2, 1, "version", "v1"),
		lbtest.Inst(3, 1, "version", "v2"), lbtest.Inst(4, 1, "version", "v3"))
	b := balancer.New(pool, chat(map[string]int{"v1": 50, "v2": 25, "v4": 25}), balancer.WithRand(lbtest.Rand(3)))
	got := lbtest.Count(t, b, &balancer.Request{Route: "chat"}, picks, ok, lbtest.ByVersion)
	lbtest.Share(t, "v1", got["v1"], picks, 2.0/3, 0.02)
	lbtest.Share(t, "v2", got["v2"], picks, 1.0/3, 0.02)
	if got["v3"] != 0 {
		t.Errorf("v3 got %d picks", got["v3"])
	}

	b = balancer.New(pool, chat(map[string]int{"v4": 100}))
	if _, err := b.Pick(&balancer.Request{Route: "chat"}); !errors.Is(err, balancer.ErrNoInstance) || !strings.Contains(err.Error(), "v4") {
		t.Errorf("split without instances: err = %v", err)
	}
}

func TestStickyKey(t *testing.T) {
	var ins []*discovery.Instance
	for n := 1; n <= 5; n++ {
		ins = append(ins, lbtest.Inst(n, 1, "version", "v1"))
	}
	pool := lbtest.Pool(append(ins, lbtest.Inst(6, 1, "version", "v2"))...)
	split := chat(map[string]int{"v1": 90, "v2": 10})
	b := balancer.New(pool, split, balancer.WithRand(lbtest.Rand(4)))
	other := balancer.New(pool, split) // another process: same key, same version

	const keys = 10000
	v2 := 0
	for k := range keys {
		req := &balancer.Request{Route: "chat", StickyKey: fmt.Sprint("user-", k)}
		first := ""
		for i := range 5 {
			p, err := []*balancer.Balancer{b, other}[i%2].Pick(req)
			if err != nil {
				t.Fatal(err)
			}
			p.Done(ok)
			if first == "" {
				first = p.Instance.Version
			} else if p.Instance.Version != first {
				t.Fatalf("key %s got %s then %s", req.StickyKey, first, p.Instance.Version)
			}
		}
		if first == "v2" {
			v2++
		}
	}
	lbtest.Share(t, "keys on v2", v2, keys, 0.10, 0.02)
}

func TestPreferredTags(t *testing.T) {
	pool := lbtest.Pool(lbtest.Inst(1, 1, "gpu", "h100", "max_concurrency", "1"), lbtest.Inst(2, 1, "gpu", "h100", "max_concurrency", "1"),
		lbtest.Inst(3, 1, "gpu", "a100"), lbtest.Inst(4, 1, "gpu", "a100"))
	routes := []balancer.Route{{Name: "chat", Service: "qwen", Prefer: map[string]string{"gpu": "h100"}}}
	b := balancer.New(pool, routes, balancer.WithRand(lbtest.Rand(5)))
	req := &balancer.Request{Route: "chat"}
	gpu := func(in *discovery.Instance) string { return in.Tags["gpu"] }
	if got := lbtest.Count(t, b, req, 1000, ok, gpu); got["h100"] != 1000 {
		t.Errorf("preferred instances available: picks %v", got)
	}

	// Both preferred instances full: the others serve.
	var held []balancer.Picked
	for range 2 {
		p, err := b.Pick(req)
		if err != nil || p.Instance.Tags["gpu"] != "h100" {
			t.Fatalf("pick = %v, %v", p.Instance, err)
		}
		held = append(held, p)
	}
	if got := lbtest.Count(t, b, req, 100, ok, gpu); got["a100"] != 100 {
		t.Errorf("preferred instances full: picks %v", got)
	}
	for _, p := range held {
		p.Done(ok)
	}

	// Both preferred instances' breakers open: the others serve.
	for _, n := range []int{1, 2} {
		tripBreaker(t, b, "chat", n, 5)
	}
	if got := lbtest.Count(t, b, req, 100, ok, gpu); got["a100"] != 100 {
		t.Errorf("preferred instances open: picks %v", got)
	}
	if n := b.PanicPicks("chat"); n != 0 {
		t.Errorf("panic picks = %d, want 0", n)
	}
}

func TestRequiredAndRequestTags(t *testing.T) {
	pool := lbtest.Pool(lbtest.Inst(1, 1, "gpu", "a100", "zone", "a"), lbtest.Inst(2, 1, "gpu", "a100", "zone", "b"),
		lbtest.Inst(3, 1, "gpu", "h100", "zone", "b"))
	routes := []balancer.Route{
		{Name: "a100", Service: lbtest.Key, Tags: map[string]string{"gpu": "a100"}},
		{Name: "h200", Service: lbtest.Key, Tags: map[string]string{"gpu": "h200"}},
	}
	b := balancer.New(pool, routes, balancer.WithRand(lbtest.Rand(6)))
	tests := []struct {
		name    string
		req     balancer.Request
		want    []int  // instances that may be picked
		wantErr string // in the error, which wraps ErrNoInstance
	}{
		{"route tags", balancer.Request{Route: "a100"}, []int{1, 2}, ""},
		{"request narrows", balancer.Request{Route: "a100", Tags: map[string]string{"zone": "b"}}, []int{2}, ""},
		{"request repeats route tags", balancer.Request{Route: "a100", Tags: map[string]string{"gpu": "a100"}}, []int{1, 2}, ""},
		{"request cannot widen", balancer.Request{Route: "a100", Tags: map[string]string{"gpu": "h100"}}, nil, "gpu=h100"},
		{"no instance has route tags", balancer.Request{Route: "h200"}, nil, "gpu=h200"},
		{"service fallback with tags", balancer.Request{Service: lbtest.Key, Tags: map[string]string{"gpu": "h100"}}, []int{3}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.wantErr != "" {
				_, err := b.Pick(&tt.req)
				if !errors.Is(err, balancer.ErrNoInstance) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrNoInstance naming %s", err, tt.wantErr)
				}
				return
			}
			got := lbtest.Count(t, b, &tt.req, 300, ok, lbtest.ByID)
			for _, n := range tt.want {
				if got[lbtest.ID(n)] == 0 {
					t.Errorf("instance %d never picked: %v", n, got)
				}
				delete(got, lbtest.ID(n))
			}
			if len(got) > 0 {
				t.Errorf("picked outside %v: %v", tt.want, got)
			}
		})
	}
}

func TestMaxConcurrencyAndExclude(t *testing.T) {
	pool := lbtest.Pool(lbtest.Inst(1, 1, "max_concurrency", "2"), lbtest.Inst(2, 1), lbtest.Inst(3, 1))
	b := balancer.New(pool, chat(nil), balancer.WithRand(lbtest.Rand(7)))
	onlyOne := &balancer.Request{Route: "chat", Exclude: []string{lbtest.ID(2), lbtest.ID(3)}}
	var held []balancer.Picked
	for range 2 {
		p, err := b.Pick(onlyOne)
		if err != nil || p.Instance.ID() != lbtest.ID(1) {
			t.Fatalf("pick = %v, %v", p.Instance, err)
		}
		held = append(held, p)
	}
	got := lbtest.Count(t, b, &balancer.Request{Route: "chat"}, 500, ok, lbtest.ByID)
	if got[lbtest.ID(1)] != 0 || got[lbtest.ID(2)] == 0 || got[lbtest.ID(3)] == 0 {
		t.Errorf("instance 1 full: picks %v", got)
	}
	// When every candidate is full, full ones are picked (a soft cap).
	if p, err := b.Pick(onlyOne); err != nil || p.Instance.ID() != lbtest.ID(1) {
		t.Errorf("all full: pick = %v, %v", p.Instance, err)
	} else {
		held = append(held, p)
	}
	for _, p := range held {
		p.Done(ok)
	}

	got = lbtest.Count(t, b, &balancer.Request{Route: "chat", Exclude: []string{lbtest.ID(2)}}, 500, ok, lbtest.ByID)
	if got[lbtest.ID(2)] != 0 || got[lbtest.ID(1)] == 0 || got[lbtest.ID(3)] == 0 {
		t.Errorf("instance 2 excluded: picks %v", got)
	}
	all := &balancer.Request{Route: "chat", Exclude: []string{lbtest.ID(1), lbtest.ID(2), lbtest.ID(3)}}
	if _, err := b.Pick(all); !errors.Is(err, balancer.ErrNoInstance) || !strings.Contains(err.Error(), "already tried") {
		t.Errorf("all excluded: err = %v", err)
	}
	for _, st := range b.Instances() {
		if st.InFlight != 0 {
			t.Errorf("%s: in flight %d after every Done", st.ID, st.InFlight)
		}
	}
}

func TestUnusableAndUnknown(t *testing.T) {
	drain := lbtest.Inst(1, 1, "drain", "true")
	sick, off, zero := lbtest.Inst(2, 1), lbtest.Inst(3, 1), lbtest.Inst(4, 0)
	sick.Healthy, off.Enabled = false, false
	pool := lbtest.Pool(drain, sick, off, zero, lbtest.Inst(5, 1))
	b := balancer.New(pool, chat(nil))
	got := lbtest.Count(t, b, &balancer.Request{Route: "chat"}, 200, ok, lbtest.ByID)
	if got[lbtest.ID(5)] != 200 {
		t.Errorf("picks %v, want only the usable instance", got)
	}
	if got := lbtest.Count(t, b, &balancer.Request{Route: "nope", Service: lbtest.Key}, 10, ok, lbtest.ByID); got[lbtest.ID(5)] != 10 {
		t.Errorf("unknown route, known service: picks %v", got)
	}
	if _, err := b.Pick(&balancer.Request{Route: "nope", Service: "LLM@@nope"}); !errors.Is(err, balancer.ErrNoInstance) {
		t.Errorf("unknown route and service: err = %v", err)
	}
	b = balancer.New(lbtest.Pool(drain, sick), []balancer.Route{{Name: "chat", Service: lbtest.Key}, {Name: "gone", Service: "other"}})
	for _, route := range []string{"chat", "gone"} {
		if _, err := b.Pick(&balancer.Request{Route: route}); !errors.Is(err, balancer.ErrNoInstance) {
			t.Errorf("route %s: err = %v", route, err)
		}
	}
}

func TestValidateRoutes(t *testing.T) {
	tests := []struct {
		name   string
		routes []balancer.Route
		want   string
	}{
		{"ok", chat(map[string]int{"v1": 1, "v2": 0}), ""},
		{"no name", []balancer.Route{{Service: "s"}}, "name is empty"},
		{"no service", []balancer.Route{{Name: "r"}}, "service is empty"},
		{"negative split", []balancer.Route{{Name: "r", Service: "s", Split: map[string]int{"v1": -1}}}, `split["v1"]`},
		{"zero split", []balancer.Route{{Name: "r", Service: "s", Split: map[string]int{"v1": 0}}}, "all 0"},
		{"duplicate", []balancer.Route{{Name: "r", Service: "s"}, {Name: "r", Service: "t"}}, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := balancer.ValidateRoutes(tt.routes)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, balancer.ErrBadRoute) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrBadRoute with %q", err, tt.want)
			}
		})
	}
}
