package degrade_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelgate/modelgate/degrade"
	"github.com/modelgate/modelgate/internal/fakeclock"
)

var noDeadline time.Time

// outcome is what one Acquire returned.
type outcome struct {
	release func()
	waited  time.Duration
	err     error
}

// acquireAsync starts an Acquire and returns where its outcome will arrive.
func acquireAsync(ctx context.Context, l *degrade.Limiter, c degrade.Class, deadline time.Time) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		rel, waited, err := l.Acquire(ctx, c, deadline)
		ch <- outcome{rel, waited, err}
	}()
	return ch
}

// mustHold takes a slot that is free.
func mustHold(t *testing.T, l *degrade.Limiter) func() {
	t.Helper()
	rel, waited, err := l.Acquire(context.Background(), degrade.Standard, noDeadline)
	if err != nil || rel == nil || waited != 0 {
		t.Fatalf("Acquire of a free slot = %v, %v", waited, err)
	}
	return rel
}

func queued(l *degrade.Limiter, n int) func() bool {
	return func() bool { return l.Stats().Queued == n }
}

func TestLimiterCapFourTwentyCallers(t *testing.T) {
	for round := range 20 {
		l := degrade.NewLimiter(4, 20)
		var holders, peak atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, 20)
		for i := range 20 {
			wg.Go(func() {
				<-start
				rel, _, err := l.Acquire(context.Background(), degrade.Class(i%3), noDeadline)
				if err != nil {
					errs <- err
					return
				}
				h := holders.Add(1)
				for p := peak.Load(); h > p && !peak.CompareAndSwap(p, h); p = peak.Load() {
				}
				for range 10 * (i % 4) { // hold for a moment: let the others run
					runtime.Gosched()
				}
				holders.Add(-1)
				rel()
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
		if p := peak.Load(); p > 4 || p < 1 {
			t.Fatalf("round %d: %d holders at once", round, p)
		}
		if st := l.Stats(); st.InFlight != 0 || st.Queued != 0 {
			t.Fatalf("round %d: left %+v", round, st)
		}
	}
}

func TestLimiterClassOrder(t *testing.T) {
	l := degrade.NewLimiter(1, 10)
	hold := mustHold(t, l)
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	for i, w := range []struct {
		name  string
		class degrade.Class
	}{
		{"s1", degrade.Sheddable}, {"d1", degrade.Standard}, {"c1", degrade.Critical},
		{"s2", degrade.Sheddable}, {"c2", degrade.Critical}, {"d2", degrade.Standard},
	} {
		wg.Go(func() {
			rel, waited, err := l.Acquire(context.Background(), w.class, noDeadline)
			if err != nil {
				t.Errorf("%s: %v", w.name, err)
				return
			}
			if waited < 0 {
				t.Errorf("%s waited %v", w.name, waited)
			}
			mu.Lock()
			order = append(order, w.name)
			mu.Unlock()
			rel()
		})
		waitFor(t, w.name+" queued", queued(l, i+1))
	}
	hold()
	wg.Wait()
	if got := fmt.Sprint(order); got != "[c1 c2 d1 d2 s1 s2]" {
		t.Fatalf("served %s", got)
	}
}

func TestLimiterDeadline(t *testing.T) {
	clock := fakeclock.New(t0)
	l := degrade.NewLimiter(1, 10, degrade.WithClock(clock))
	hold := mustHold(t, l)

	ch := acquireAsync(context.Background(), l, degrade.Critical, t0.Add(time.Second))
	waitFor(t, "the deadline timer", func() bool { return clock.Pending() == 1 })
	clock.Advance(999 * time.Millisecond)
	select {
	case o := <-ch:
		t.Fatalf("outcome before the deadline: %+v", o)
	default:
	}
	clock.Advance(time.Millisecond)
	o := <-ch
	if !errors.Is(o.err, degrade.ErrQueueTimeout) || o.release != nil || o.waited != time.Second {
		t.Fatalf("at the deadline: %+v", o)
	}
	if st := l.Stats(); st.Queued != 0 || st.InFlight != 1 {
		t.Fatalf("after timeout %+v", st)
	}

	// A deadline already past times out at once when a wait is needed...
	if _, _, err := l.Acquire(context.Background(), degrade.Critical, clock.Now()); !errors.Is(err, degrade.ErrQueueTimeout) {
		t.Fatalf("past deadline, no slot: %v", err)
	}
	// ...and does not matter when a slot is free.
	hold()
	rel, _, err := l.Acquire(context.Background(), degrade.Critical, clock.Now().Add(-time.Hour))
	if err != nil {
		t.Fatalf("past deadline, free slot: %v", err)
	}
	// A grant before the deadline stops its timer.
	ch = acquireAsync(context.Background(), l, degrade.Standard, clock.Now().Add(time.Second))
	waitFor(t, "the deadline timer", func() bool { return clock.Pending() == 1 })
	clock.Advance(300 * time.Millisecond)
	rel()
	o = <-ch
	if o.err != nil || o.waited != 300*time.Millisecond {
		t.Fatalf("granted: %+v", o)
	}
	if clock.Pending() != 0 {
		t.Fatal("deadline timer left armed")
	}
	o.release()
}

func TestLimiterContext(t *testing.T) {
	l := degrade.NewLimiter(1, 10)
	hold := mustHold(t, l)
	defer hold()
	ctx, cancel := context.WithCancel(context.Background())
	ch := acquireAsync(ctx, l, degrade.Critical, noDeadline)
	waitFor(t, "queued", queued(l, 1))
	cancel()
	if o := <-ch; !errors.Is(o.err, context.Canceled) || o.release != nil {
		t.Fatalf("cancelled: %+v", o)
	}
	if _, _, err := l.Acquire(ctx, degrade.Critical, noDeadline); !errors.Is(err, context.Canceled) {
		t.Fatalf("done ctx: %v", err)
	}
	if st := l.Stats(); st.Queued != 0 || st.InFlight != 1 {
		t.Fatalf("left %+v", st)
	}
}

func TestLimiterQueueFull(t *testing.T) {
	l := degrade.NewLimiter(1, 2)
	hold := mustHold(t, l)
	ctx := context.Background()
	a := acquireAsync(ctx, l, degrade.Standard, noDeadline)
	waitFor(t, "a queued", queued(l, 1))
	b := acquireAsync(ctx, l, degrade.Sheddable, noDeadline)
	waitFor(t, "b queued", queued(l, 2))

	// Full, and nothing below sheddable: refused at once.
	if _, _, err := l.Acquire(ctx, degrade.Sheddable, noDeadline); !errors.Is(err, degrade.ErrQueueFull) {
		t.Fatalf("sheddable into a full queue: %v", err)
	}
	// A critical caller pushes out the newest lowest waiter, b.
	d := acquireAsync(ctx, l, degrade.Critical, noDeadline)
	if o := <-b; !errors.Is(o.err, degrade.ErrQueueFull) {
		t.Fatalf("b: %+v", o)
	}
	waitFor(t, "d queued", queued(l, 2))
	// Only standard and critical left: a standard caller is refused.
	if _, _, err := l.Acquire(ctx, degrade.Standard, noDeadline); !errors.Is(err, degrade.ErrQueueFull) {
		t.Fatalf("standard into a full queue: %v", err)
	}
	hold()
	(<-d).release()
	(<-a).release()

	// No queue at all.
	l = degrade.NewLimiter(1, 0)
	hold = mustHold(t, l)
	if _, _, err := l.Acquire(ctx, degrade.Critical, noDeadline); !errors.Is(err, degrade.ErrQueueFull) {
		t.Fatalf("no queue: %v", err)
	}
	hold()
	if _, _, err := l.Acquire(ctx, degrade.Class(9), noDeadline); !errors.Is(err, degrade.ErrBadClass) {
		t.Fatalf("bad class: %v", err)
	}
}

func TestLimiterSetCapAndQueue(t *testing.T) {
	l := degrade.NewLimiter(1, 10)
	hold := mustHold(t, l)
	ctx := context.Background()
	var chs []<-chan outcome
	for i := range 4 {
		chs = append(chs, acquireAsync(ctx, l, degrade.Standard, noDeadline))
		waitFor(t, "queued", queued(l, i+1))
	}
	l.SetCap(3) // two more slots: the first two waiters
	for _, ch := range chs[:2] {
		if o := <-ch; o.err != nil {
			t.Fatal(o.err)
		}
	}
	if st := l.Stats(); st.InFlight != 3 || st.Queued != 2 {
		t.Fatalf("after SetCap(3): %+v", st)
	}
	l.SetMaxQueue(1) // the newest waiter goes
	if o := <-chs[3]; !errors.Is(o.err, degrade.ErrQueueFull) {
		t.Fatalf("pushed out: %+v", o)
	}
	l.SetCap(0) // no cap: the last waiter at once
	if o := <-chs[2]; o.err != nil {
		t.Fatal(o.err)
	}
	l.SetCap(1) // four holders over a cap of one: a newcomer waits
	ch := acquireAsync(ctx, l, degrade.Critical, noDeadline)
	waitFor(t, "queued", queued(l, 1))
	hold()
	if st := l.Stats(); st.InFlight != 3 || st.Queued != 1 {
		t.Fatalf("over the cap: %+v", st)
	}
	st := l.Stats()
	if st.Cap != 1 || st.MaxQueue != 1 {
		t.Fatalf("stats %+v", st)
	}
	l.SetCap(5)
	(<-ch).release()
}

// TestLimiterStress checks that every Acquire has exactly one outcome and
// that no slot is lost or granted twice, under deadlines, cancellations,
// evictions, double releases and cap changes.
func TestLimiterStress(t *testing.T) {
	for _, tc := range []struct {
		name      string
		changeCap bool
	}{{"fixed cap", false}, {"moving cap", true}} {
		t.Run(tc.name, func(t *testing.T) {
			const capacity, callers, rounds = 4, 64, 60
			l := degrade.NewLimiter(capacity, 40)
			var holders, peak atomic.Int32
			var granted, refused atomic.Int64
			var kinds sync.Map // error → *atomic.Int64
			stop := make(chan struct{})
			var capWG sync.WaitGroup
			if tc.changeCap {
				capWG.Go(func() {
					rng := rand.New(rand.NewPCG(7, 7))
					for {
						select {
						case <-stop:
							return
						default:
						}
						l.SetCap(rng.IntN(6))
						l.SetMaxQueue(rng.IntN(20))
						runtime.Gosched()
					}
				})
			}
			var wg sync.WaitGroup
			for g := range callers {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(g), 1))
					for range rounds {
						ctx, cancel := context.Background(), context.CancelFunc(func() {})
						if rng.IntN(4) == 0 {
							ctx, cancel = context.WithTimeout(ctx, time.Duration(rng.IntN(2000))*time.Microsecond)
						}
						deadline := noDeadline
						if rng.IntN(3) == 0 {
							deadline = time.Now().Add(time.Duration(rng.IntN(3000)) * time.Microsecond)
						}
						rel, _, err := l.Acquire(ctx, degrade.Class(rng.IntN(3)), deadline)
						cancel()
						if (rel == nil) == (err == nil) {
							t.Errorf("release %v with error %v", rel != nil, err)
							return
						}
						if err != nil {
							refused.Add(1)
							n, _ := kinds.LoadOrStore(err.Error(), new(atomic.Int64))
							n.(*atomic.Int64).Add(1)
							continue
						}
						granted.Add(1)
						h := holders.Add(1)
						for p := peak.Load(); h > p && !peak.CompareAndSwap(p, h); p = peak.Load() {
						}
						for range rng.IntN(40) {
							runtime.Gosched()
						}
						holders.Add(-1)
						rel()
						if rng.IntN(5) == 0 {
							rel() // a second call does nothing
						}
					}
				})
			}
			wg.Wait()
			close(stop)
			capWG.Wait()
			if got := granted.Load() + refused.Load(); got != callers*rounds {
				t.Fatalf("%d outcomes for %d calls", got, callers*rounds)
			}
			if !tc.changeCap && peak.Load() > capacity {
				t.Fatalf("%d holders at once, cap %d", peak.Load(), capacity)
			}
			if st := l.Stats(); st.InFlight != 0 || st.Queued != 0 {
				t.Fatalf("left %+v", st)
			}
			t.Logf("granted %d, peak %d", granted.Load(), peak.Load())
			kinds.Range(func(k, v any) bool {
				t.Logf("%s: %d", k, v.(*atomic.Int64).Load())
				return true
			})
		})
	}
}
