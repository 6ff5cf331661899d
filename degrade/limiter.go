package degrade

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Limiter caps the requests a route has in flight. Up to its cap, Acquire
// grants a slot at once; beyond, callers wait in a bounded queue ordered by
// class (Critical, then Standard, then Sheddable; first come, first served
// within a class) until a slot is handed to them, their deadline passes or
// their context ends. A released slot goes straight to the next waiter, so
// a newcomer never overtakes the queue.
//
// The Limiter always enforces its cap when called; whether to call it (only
// in TierCap and above, or always with SetCap moving with the tier) is the
// caller's choice. It is safe for concurrent use.
type Limiter struct {
	clock Clock

	mu       sync.Mutex
	capacity int // ≤ 0: no cap
	maxQueue int // ≤ 0: no queue
	holders  int
	queued   int
	queues   [numClasses]waitList
}

// LimiterStats is a Limiter's state at one moment.
type LimiterStats struct {
	Cap      int // ≤ 0: no cap
	MaxQueue int
	InFlight int // slots held
	Queued   int // waiters in the queue
}

// NewLimiter returns a Limiter with capacity slots (≤ 0: no cap) and room
// for maxQueue waiters (≤ 0: none; excess callers get ErrQueueFull at once).
// Of the options, only WithClock applies.
func NewLimiter(capacity, maxQueue int, opts ...Option) *Limiter {
	return &Limiter{clock: collect(opts).clock, capacity: capacity, maxQueue: maxQueue}
}

// Acquire takes a slot for a request of class c, waiting in the queue if
// none is free. deadline bounds the wait (zero: only ctx bounds it); a free
// slot is granted even past the deadline. Every call has exactly one
// outcome:
//
//   - a slot: release is non-nil and must be called once the request is
//     done (further calls do nothing); waited is the time spent queued.
//   - ErrQueueFull: the queue was full, at once, or the caller was pushed
//     out of a full queue by a caller of a higher class, which takes its
//     place: the newest waiter of the lowest class below goes first.
//   - ErrQueueTimeout: the deadline passed while queued.
//   - ctx.Err(): ctx ended first. A slot granted in the same instant is
//     passed on to the next waiter.
//   - ErrBadClass: c is not one of the three classes.
//
// Errors are the bare sentinels (or ctx's own), so the request path does
// not allocate for them. A granted slot allocates its release function.
func (l *Limiter) Acquire(ctx context.Context, c Class, deadline time.Time) (release func(), waited time.Duration, err error) {
	if waited, err = l.acquire(ctx, c, deadline); err != nil {
		return nil, waited, err
	}
	return l.releaser(), waited, nil
}

// acquire is Acquire without the release function: on success the caller
// holds a slot and gives it back with exactly one call of l.release.
func (l *Limiter) acquire(ctx context.Context, c Class, deadline time.Time) (waited time.Duration, err error) {
	if int(c) >= numClasses {
		return 0, ErrBadClass
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	l.mu.Lock()
	if l.queued == 0 && l.free() {
		l.holders++
		l.mu.Unlock()
		return 0, nil
	}
	start := l.clock.Now()
	if !deadline.IsZero() && !start.Before(deadline) {
		l.mu.Unlock()
		return 0, ErrQueueTimeout
	}
	w := &waiter{rank: rank[c], ready: make(chan struct{})}
	if !l.makeRoom(w.rank) {
		l.mu.Unlock()
		return 0, ErrQueueFull
	}
	l.queues[w.rank].pushBack(w)
	l.queued++
	l.mu.Unlock()

	if !deadline.IsZero() {
		stop := l.clock.AfterFunc(deadline.Sub(start), func() { l.drop(w, ErrQueueTimeout) })
		defer stop()
	}
	select {
	case <-w.ready:
	case <-ctx.Done():
		l.drop(w, ctx.Err())
		<-w.ready // closed by whoever decided first
		if w.outcome == nil {
			l.release()
			w.outcome = ctx.Err()
		}
	}
	return l.clock.Now().Sub(start), w.outcome
}

// free reports whether a slot is free. l.mu must be held.
func (l *Limiter) free() bool { return l.capacity <= 0 || l.holders < l.capacity }

// makeRoom reports whether a waiter of the given rank fits in the queue,
// evicting the newest waiter of the lowest rank below it if the queue is
// full. l.mu must be held.
func (l *Limiter) makeRoom(r uint8) bool {
	if l.queued < l.maxQueue {
		return true
	}
	if l.maxQueue <= 0 {
		return false
	}
	for q := numClasses - 1; q > int(r); q-- {
		if v := l.queues[q].tail; v != nil {
			l.dequeue(v)
			v.finish(ErrQueueFull)
			return true
		}
	}
	return false
}

// dequeue takes w out of its queue. l.mu must be held.
func (l *Limiter) dequeue(w *waiter) {
	l.queues[w.rank].remove(w)
	l.queued--
}

// drop ends w's wait with err, unless it has already ended.
func (l *Limiter) drop(w *waiter, err error) {
	l.mu.Lock()
	if w.queued {
		l.dequeue(w)
		w.finish(err)
	}
	l.mu.Unlock()
}

// releaser returns the release function of one granted slot.
func (l *Limiter) releaser() func() {
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			l.release()
		}
	}
}

// release gives a slot back and hands free slots to waiters.
func (l *Limiter) release() {
	l.mu.Lock()
	l.holders--
	l.dispatch()
	l.mu.Unlock()
}

// dispatch grants free slots to waiters in order. l.mu must be held.
func (l *Limiter) dispatch() {
	for l.queued > 0 && l.free() {
		for q := range l.queues {
			if w := l.queues[q].head; w != nil {
				l.dequeue(w)
				l.holders++
				w.finish(nil)
				break
			}
		}
	}
}

// SetCap changes the cap (≤ 0: none). Raising it grants queued waiters at
// once; lowering it lets the holders above the new cap finish.
func (l *Limiter) SetCap(capacity int) {
	l.mu.Lock()
	l.capacity = capacity
	l.dispatch()
	l.mu.Unlock()
}

// SetMaxQueue changes the queue bound (≤ 0: no queue). Waiters beyond a
// lowered bound are pushed out, lowest class and newest first, with
// ErrQueueFull.
func (l *Limiter) SetMaxQueue(n int) {
	l.mu.Lock()
	l.maxQueue = n
	for q := numClasses - 1; q >= 0 && l.queued > max(n, 0); {
		if v := l.queues[q].tail; v != nil {
			l.dequeue(v)
			v.finish(ErrQueueFull)
		} else {
			q--
		}
	}
	l.mu.Unlock()
}

// Stats returns the Limiter's cap, queue bound, slots held and waiters.
func (l *Limiter) Stats() LimiterStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LimiterStats{Cap: l.capacity, MaxQueue: l.maxQueue, InFlight: l.holders, Queued: l.queued}
}
