package router

import (
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/testkit"
)

// load sends n chat requests from c concurrent clients and returns how many
// each instance answered and how many failed.
func (g *gateway) load(n, c int) (by map[string]int, failed int) {
	var mu sync.Mutex
	by = map[string]int{}
	var wg sync.WaitGroup
	for w := range c {
		wg.Go(func() {
			for i := w; i < n; i += c {
				r := g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`)
				mu.Lock()
				if r.StatusCode() == 200 {
					by[string(r.Header.Peek("X-Mock-Instance"))]++
				} else {
					failed++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return by, failed
}

// TestSlowInstanceGetsLittleTraffic: one instance made 200 ms slower gets
// under 15 % of the traffic under p2c.
func TestSlowInstanceGetsLittleTraffic(t *testing.T) {
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen"}}})
	m := g.mocks("qwen", 3, mockllm.Config{Latency: 5 * time.Millisecond}, nil)
	m[0].Set(func(c *mockllm.Config) { c.Latency = 205 * time.Millisecond })
	by, failed := g.load(600, 6)
	share := float64(by["qwen-0"]) / 600
	t.Logf("slow instance: %d of 600 (%.3f); others %d, %d", by["qwen-0"], share, by["qwen-1"], by["qwen-2"])
	if failed > 0 || share >= 0.15 {
		t.Fatalf("slow instance share %.3f (want < 0.15), %d failed", share, failed)
	}
}

// TestKilledInstanceUnderLoad: an instance killed under load → with retries
// no client sees an error; restarted, it is probed and used again.
func TestKilledInstanceUnderLoad(t *testing.T) {
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen", Retries: 2}}},
		WithBalancerOptions(balancer.WithBreaker(balancer.BreakerSettings{ConsecutiveFailures: 2, OpenTimeout: 200 * time.Millisecond, HalfOpenProbes: 1})))
	m := g.mocks("qwen", 3, mockllm.Config{Latency: 2 * time.Millisecond}, nil)
	addr := m[0].Addr()

	done := make(chan struct{})
	var by map[string]int
	var failed int
	go func() { by, failed = g.load(1500, 6); close(done) }()
	// Kill it while it serves.
	testkit.Eventually(t, 30*time.Second, "50 requests served by the instance to kill", func() bool {
		select {
		case <-done:
			t.Fatal("load ended before the kill")
		default:
		}
		return m[0].Requests() >= 50
	})
	_ = m[0].Close()
	<-done
	if failed > 0 {
		t.Fatalf("%d client errors with retries on (served: %v)", failed, by)
	}

	// Back on the same address: the breaker's half-open probe finds it.
	back, err := mockllm.Start(addr, mockllm.Config{Name: "qwen-0"})
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	defer back.Close()
	testkit.Eventually(t, 10*time.Second, "traffic on the restarted instance", func() bool {
		if back.Requests() > 0 {
			return true
		}
		if _, failed := g.load(30, 3); failed > 0 {
			t.Fatalf("%d errors after the restart", failed)
		}
		return false
	})
}
