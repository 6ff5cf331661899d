package degrade_test

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/degrade"
)

func TestWindowCounts(t *testing.T) {
	w := degrade.NewWindow(10 * time.Second)
	for i := range 100 {
		w.Record(t0.Add(time.Duration(i)*10*time.Millisecond), i%5 == 0, 0)
	}
	for _, tc := range []struct {
		name string
		at   time.Duration
		reqs int
		errs float64
	}{
		{"same second", 999 * time.Millisecond, 100, 0.2},
		{"last second of the span", 9 * time.Second, 100, 0.2},
		{"span passed", 10 * time.Second, 0, 0},
		{"long after", time.Hour, 0, 0},
		{"before the records", -time.Second, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reqs, errs, p95 := w.Snapshot(t0.Add(tc.at))
			if reqs != tc.reqs || math.Abs(errs-tc.errs) > 1e-9 || p95 != 0 {
				t.Fatalf("Snapshot = %d, %v, %v; want %d, %v, 0", reqs, errs, p95, tc.reqs, tc.errs)
			}
		})
	}
	// The slot of t0 is reused ten seconds later: old counts go.
	w.Record(t0.Add(10*time.Second), true, 0)
	if reqs, errs, _ := w.Snapshot(t0.Add(10 * time.Second)); reqs != 1 || errs != 1 {
		t.Fatalf("after reuse: %d, %v", reqs, errs)
	}
}

func TestWindowP95(t *testing.T) {
	w := degrade.NewWindow(0) // default 10 s
	// 1..100 ms over five seconds, plus requests without a TTFT.
	for i := 1; i <= 100; i++ {
		w.Record(t0.Add(time.Duration(i%5)*time.Second), false, time.Duration(i)*time.Millisecond)
		w.Record(t0, true, 0)
	}
	reqs, errs, p95 := w.Snapshot(t0.Add(5 * time.Second))
	if reqs != 200 || errs != 0.5 {
		t.Fatalf("counts %d, %v", reqs, errs)
	}
	if p95 < 95*time.Millisecond || p95 > 95*time.Millisecond*1125/1000 {
		t.Fatalf("p95 %v, want 95ms within +12.5%%", p95)
	}
	// The window of ten seconds drops the second t0.
	if reqs, _, _ := w.Snapshot(t0.Add(10 * time.Second)); reqs != 80 {
		t.Fatalf("after t0 left: %d requests", reqs)
	}
	// Huge values land in the last bucket rather than out of range.
	w.Record(t0, false, 1000*time.Hour)
}

func TestWindowConcurrent(t *testing.T) {
	w := degrade.NewWindow(3 * time.Second)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				w.Record(t0.Add(time.Duration(i%3)*time.Second), g%2 == 0, time.Millisecond)
			}
		})
	}
	wg.Wait()
	if reqs, errs, _ := w.Snapshot(t0.Add(2 * time.Second)); reqs != 8000 || errs != 0.5 {
		t.Fatalf("%d requests, %v errors", reqs, errs)
	}
}
