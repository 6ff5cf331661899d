package tick_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/modelgate/modelgate/internal/fakeclock"
	"github.com/modelgate/modelgate/internal/testkit"
	"github.com/modelgate/modelgate/internal/tick"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestEveryOnFakeClock checks that Every calls at once, then once per
// interval of the clock (read anew before each wait), and stops with its
// context, leaving no timer.
func TestEveryOnFakeClock(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := fakeclock.New(t0)
	var n atomic.Int32
	var interval atomic.Int64
	interval.Store(int64(10 * time.Second))
	var mu sync.Mutex
	var at []time.Time
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick.Every(ctx, clk, func() time.Duration { return time.Duration(interval.Load()) }, func() {
			mu.Lock()
			at = append(at, clk.Now())
			mu.Unlock()
			n.Add(1)
		})
	})
	// waitFor waits until the i-th call has returned and its timer is set.
	waitFor := func(i int32) {
		t.Helper()
		testkit.Eventually(t, 5*time.Second, "call", func() bool { return n.Load() == i && clk.Pending() == 1 })
	}
	waitFor(1)
	clk.Advance(9 * time.Second)
	if n.Load() != 1 {
		t.Fatalf("%d calls before the interval passed", n.Load())
	}
	clk.Advance(time.Second)
	waitFor(2)
	interval.Store(int64(time.Minute)) // from the next wait on
	clk.Advance(10 * time.Second)
	waitFor(3)
	clk.Advance(59 * time.Second)
	if n.Load() != 3 {
		t.Fatalf("%d calls before the new interval passed", n.Load())
	}
	clk.Advance(time.Second)
	waitFor(4)
	mu.Lock()
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second, 80 * time.Second}
	for i, d := range want {
		if !at[i].Equal(t0.Add(d)) {
			t.Errorf("call %d at %v, want %v", i+1, at[i], t0.Add(d))
		}
	}
	mu.Unlock()
	cancel()
	wg.Wait()
	if clk.Pending() != 0 {
		t.Errorf("%d timers left after Every returned", clk.Pending())
	}
}
