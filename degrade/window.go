package degrade

import (
	"math/bits"
	"sync"
	"time"
)

// Window counts a route's requests, errors and times to first token over
// the last few seconds, in a ring of one-second buckets: the source of
// Signals.Requests, ErrorRatio and TTFTp95. Memory is fixed at creation
// (about 1 KB a second of span); Record takes one short lock. It is safe for
// concurrent use.
type Window struct {
	mu      sync.Mutex
	buckets []bucket
}

// bucket holds one second's counts. ttft is a log-linear histogram.
type bucket struct {
	sec      int64 // Unix second the counts belong to
	requests uint32
	errors   uint32
	ttft     [histBuckets]uint32
}

// NewWindow returns a Window over the last span, rounded up to whole
// seconds (default 10s when span ≤ 0).
func NewWindow(span time.Duration) *Window {
	n := int((span + time.Second - 1) / time.Second)
	if span <= 0 {
		n = 10
	}
	return &Window{buckets: make([]bucket, n)}
}

// Record counts one finished request at now: whether it failed upstream,
// and its time to first token (0 when none was measured, e.g. a request that
// failed before its first byte).
func (w *Window) Record(now time.Time, failed bool, ttft time.Duration) {
	sec := now.Unix()
	w.mu.Lock()
	b := &w.buckets[w.slot(sec)]
	if b.sec != sec {
		*b = bucket{sec: sec}
	}
	b.requests++
	if failed {
		b.errors++
	}
	if ttft > 0 {
		b.ttft[histIndex(ttft)]++
	}
	w.mu.Unlock()
}

func (w *Window) slot(sec int64) int {
	n := int64(len(w.buckets))
	return int(((sec % n) + n) % n)
}

// Snapshot returns the requests counted in the span ending at now, the
// fraction of them that failed, and the 95th percentile of their times to
// first token (to within 12.5%, rounded up; 0 when none was measured).
// It allocates nothing and holds the lock for about a microsecond.
func (w *Window) Snapshot(now time.Time) (requests int, errRatio float64, p95 time.Duration) {
	sec := now.Unix()
	oldest := sec - int64(len(w.buckets)) + 1
	var hist [histBuckets]uint32
	var errs, samples int
	w.mu.Lock()
	for i := range w.buckets {
		b := &w.buckets[i]
		if b.sec < oldest || b.sec > sec || b.requests == 0 {
			continue
		}
		requests += int(b.requests)
		errs += int(b.errors)
		for j, n := range b.ttft {
			hist[j] += n
			samples += int(n)
		}
	}
	w.mu.Unlock()
	if requests > 0 {
		errRatio = float64(errs) / float64(requests)
	}
	if samples == 0 {
		return requests, errRatio, 0
	}
	rank := (samples*95 + 99) / 100
	seen := 0
	for j, n := range hist {
		if seen += int(n); seen >= rank {
			return requests, errRatio, histUpper(j)
		}
	}
	return requests, errRatio, histUpper(histBuckets - 1)
}

// The TTFT histogram is log-linear over microseconds: values below 8 µs
// each have a bucket, and each power of two above is split in 8, so a
// bucket is at most 12.5% wide. The last bucket also holds everything
// longer than about two hours.
const (
	histSub     = 8 // sub-buckets per power of two
	histMaxExp  = 32
	histBuckets = (histMaxExp-2)*histSub + histSub
)

func histIndex(d time.Duration) int {
	us := uint64(d / time.Microsecond)
	if us < histSub {
		return int(us)
	}
	e := bits.Len64(us) - 1 // ≥ 3
	i := (e-2)*histSub + int(us>>(e-3)&(histSub-1))
	return min(i, histBuckets-1)
}

// histUpper returns the largest duration that falls in bucket i.
func histUpper(i int) time.Duration {
	if i < histSub {
		return time.Duration(i) * time.Microsecond
	}
	e, m := i/histSub+2, uint64(i%histSub)
	return time.Duration((histSub+m+1)<<(e-3)-1) * time.Microsecond
}
