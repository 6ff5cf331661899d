package balancer_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/balancer/internal/lbtest"
	"github.com/modelgate/modelgate/balancer/p2c"
	"github.com/modelgate/modelgate/balancer/random"
	"github.com/modelgate/modelgate/balancer/wrr"
	"github.com/modelgate/modelgate/discovery"
)

func TestUpdatesTakeEffectOnNextPick(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool := lbtest.Pool(lbtest.Inst(1, 1, "version", "v1"), lbtest.Inst(2, 1, "version", "v2"))
	b := balancer.New(pool, chat(nil), balancer.WithPolicy(random.New()), balancer.WithRand(lbtest.Rand(9)))
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := b.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	})
	defer wg.Wait()
	defer cancel()
	req := &balancer.Request{Route: "chat"}

	pool.Update(lbtest.Key, []*discovery.Instance{lbtest.Inst(1, 9, "version", "v1"), lbtest.Inst(2, 1, "version", "v2")})
	if err := b.WaitVersion(ctx, pool.Snapshot().Version); err != nil {
		t.Fatal(err)
	}
	got := lbtest.Count(t, b, req, picks, ok, lbtest.ByID)
	lbtest.Share(t, "weight 9 of 10", got[lbtest.ID(1)], picks, 0.9, 0.02)

	if err := b.SetRoutes(chat(map[string]int{"v1": 50, "v2": 50})); err != nil {
		t.Fatal(err)
	}
	got = lbtest.Count(t, b, req, picks, ok, lbtest.ByVersion)
	lbtest.Share(t, "v2 at 50", got["v2"], picks, 0.5, 0.02)

	if err := b.SetRoutes(chat(map[string]int{"v1": -1})); !errors.Is(err, balancer.ErrBadRoute) {
		t.Fatalf("bad routes: err = %v", err)
	}
	got = lbtest.Count(t, b, req, picks, ok, lbtest.ByVersion)
	lbtest.Share(t, "v2 after a rejected SetRoutes", got["v2"], picks, 0.5, 0.02)

	// An instance that leaves takes its breaker with it.
	tripBreaker(t, b, "chat", 2, 5)
	pool.Update(lbtest.Key, []*discovery.Instance{lbtest.Inst(1, 1, "version", "v1")})
	if err := b.WaitVersion(ctx, pool.Snapshot().Version); err != nil {
		t.Fatal(err)
	}
	pool.Update(lbtest.Key, []*discovery.Instance{lbtest.Inst(1, 1, "version", "v1"), lbtest.Inst(2, 1, "version", "v2")})
	if err := b.WaitVersion(ctx, pool.Snapshot().Version); err != nil {
		t.Fatal(err)
	}
	if st := breakerOf(t, b, 2); st.Breaker != "closed" || st.Failures != 0 || st.Picks != 0 {
		t.Errorf("instance 2 came back with old state: %+v", st)
	}
}

// TestConcurrentPicksAndUpdates runs readers that pick while writers change
// the pool and the routes; run it with -race.
func TestConcurrentPicksAndUpdates(t *testing.T) {
	for _, pol := range []balancer.Policy{p2c.New(), wrr.New(), random.New()} {
		t.Run(pol.Name(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			pool := lbtest.Pool(lbtest.Inst(1, 1, "version", "v1"))
			clock := lbtest.NewClock()
			b := balancer.New(pool, chat(map[string]int{"v1": 90, "v2": 10}), balancer.WithPolicy(pol),
				balancer.WithClock(clock.Now), balancer.WithBreaker(balancer.BreakerSettings{ConsecutiveFailures: 2}))
			var run, wg sync.WaitGroup
			run.Go(func() { _ = b.Run(ctx) })
			stop := make(chan struct{})
			for r := range 4 {
				wg.Go(func() {
					req := &balancer.Request{Route: "chat", Tags: map[string]string{"zone": "a"}}
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						req.StickyKey = string(rune('a' + (i+r)%26))
						p, err := b.Pick(req)
						if err != nil {
							if !errors.Is(err, balancer.ErrNoInstance) {
								t.Error(err)
							}
							continue
						}
						res := ok
						if i%7 == 0 {
							res = failed
						}
						p.Done(res)
						if i%100 == 0 {
							b.Instances()
						}
					}
				})
			}
			for i := range 300 {
				var ins []*discovery.Instance
				for n := 1; n <= 1+i%6; n++ {
					ins = append(ins, lbtest.Inst(n, float64(1+(i+n)%3), "version", []string{"v1", "v2"}[n%2],
						"zone", "a", "max_concurrency", "2"))
				}
				pool.Update(lbtest.Key, ins)
				if i%50 == 0 {
					_ = b.SetRoutes(chat(map[string]int{"v1": 90 - i/10, "v2": 10 + i/10}))
					clock.Advance(10 * time.Second)
				}
			}
			if err := b.WaitVersion(ctx, pool.Snapshot().Version); err != nil {
				t.Fatal(err)
			}
			close(stop)
			wg.Wait()
			cancel()
			run.Wait()
			for _, st := range b.Instances() {
				if st.InFlight != 0 {
					t.Errorf("%s: in flight %d after every Done", st.ID, st.InFlight)
				}
			}
		})
	}
}
