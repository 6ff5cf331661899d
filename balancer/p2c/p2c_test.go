package p2c_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/balancer/internal/lbtest"
	"github.com/modelgate/modelgate/balancer/p2c"
	"github.com/modelgate/modelgate/discovery"
)

func TestSlowInstanceGetsFewPicks(t *testing.T) {
	for _, n := range []int{2, 4, 8} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var ins []*discovery.Instance
			for i := 1; i <= n; i++ {
				ins = append(ins, lbtest.Inst(i, 1))
			}
			b := balancer.New(lbtest.Pool(ins...), nil, balancer.WithPolicy(p2c.New()), balancer.WithRand(lbtest.Rand(11)))
			latency := func(in *discovery.Instance) time.Duration {
				if in.ID() == lbtest.ID(1) {
					return 100 * time.Millisecond // 10× the others
				}
				return 10 * time.Millisecond
			}
			req := &balancer.Request{Service: lbtest.Key}
			// Keep a few attempts in flight so that load counts too.
			const total, window = 10000, 4
			var held []balancer.Picked
			slow := 0
			for range total {
				p, err := b.Pick(req)
				if err != nil {
					t.Fatal(err)
				}
				if p.Instance.ID() == lbtest.ID(1) {
					slow++
				}
				held = append(held, p)
				if len(held) == window {
					p := held[0]
					held = held[1:]
					p.Done(balancer.Result{Status: 200, Latency: latency(p.Instance)})
				}
			}
			for _, p := range held {
				p.Done(balancer.Result{Status: 200, Latency: latency(p.Instance)})
			}
			if share := float64(slow) / total; share >= 0.15 {
				t.Errorf("slow instance got %.3f of picks, want < 0.15", share)
			} else {
				t.Logf("slow instance got %.3f of picks among %d", share, n)
			}
		})
	}
}

func TestNewInstanceWithoutLatencyIsTried(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool := lbtest.Pool(lbtest.Inst(1, 1))
	b := balancer.New(pool, nil, balancer.WithRand(lbtest.Rand(12)))
	var wg sync.WaitGroup
	wg.Go(func() { _ = b.Run(ctx) })
	defer wg.Wait()
	defer cancel()
	req := &balancer.Request{Service: lbtest.Key}
	lbtest.Count(t, b, req, 100, balancer.Result{Status: 200, Latency: time.Second}, lbtest.ByID)
	pool.Update(lbtest.Key, []*discovery.Instance{lbtest.Inst(1, 1), lbtest.Inst(2, 1)})
	if err := b.WaitVersion(ctx, pool.Snapshot().Version); err != nil {
		t.Fatal(err)
	}
	// The newcomer has no average yet: it is scored with its rival's.
	got := lbtest.Count(t, b, req, 1000, balancer.Result{Status: 200, Latency: time.Second}, lbtest.ByID)
	lbtest.Share(t, "new instance", got[lbtest.ID(2)], 1000, 0.5, 0.1)
}

// TestHealthyInstancesShareByWeight: with equal, jittery latencies traffic
// follows the Nacos weights, as a canary by weight needs.
func TestHealthyInstancesShareByWeight(t *testing.T) {
	for _, w := range []float64{10, 50, 100} {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			b := balancer.New(lbtest.Pool(lbtest.Inst(1, 100), lbtest.Inst(2, w)), nil,
				balancer.WithPolicy(p2c.New()), balancer.WithRand(lbtest.Rand(7)))
			jitter := lbtest.Rand(3)
			req := &balancer.Request{Service: lbtest.Key}
			const total = 20000
			second := 0
			for range total {
				p, err := b.Pick(req)
				if err != nil {
					t.Fatal(err)
				}
				if p.Instance.ID() == lbtest.ID(2) {
					second++
				}
				// 20 ms ± 10 %: the noise of healthy instances.
				p.Done(balancer.Result{Status: 200, Latency: 18*time.Millisecond + time.Duration(jitter()%4000)*time.Microsecond})
			}
			lbtest.Share(t, "weight "+fmt.Sprint(w), second, total, w/(100+w), 0.02)
		})
	}
}
