package degrade_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/modelgate/modelgate/degrade"
)

func BenchmarkTier(b *testing.B) {
	ctl := degrade.NewController(nil)
	names := make([]string, 50)
	for i := range names {
		names[i] = fmt.Sprintf("route-%d", i)
	}
	ctl.SetRoutes(names)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			_ = ctl.Tier(names[i%len(names)])
			i++
		}
	})
}

func BenchmarkLimiterUncontended(b *testing.B) {
	l := degrade.NewLimiter(4, 16)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		rel, _, err := l.Acquire(ctx, degrade.Standard, time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		rel()
	}
}

// BenchmarkLimiterParallel has more callers than slots, so most calls queue.
func BenchmarkLimiterParallel(b *testing.B) {
	l := degrade.NewLimiter(2, 1<<20)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rel, _, err := l.Acquire(ctx, degrade.Critical, time.Time{})
			if err != nil {
				b.Error(err)
				return
			}
			rel()
		}
	})
}

func BenchmarkWindowRecord(b *testing.B) {
	w := degrade.NewWindow(10 * time.Second)
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Record(now, false, 150*time.Millisecond)
		}
	})
}

func BenchmarkWindowSnapshot(b *testing.B) {
	w := degrade.NewWindow(10 * time.Second)
	for i := range 10000 {
		w.Record(t0.Add(time.Duration(i)*time.Millisecond), i%10 == 0, time.Duration(i)*time.Microsecond)
	}
	b.ReportAllocs()
	for b.Loop() {
		w.Snapshot(t0.Add(9 * time.Second))
	}
}
