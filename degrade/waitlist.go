package degrade

// waiter is one Acquire waiting in a Limiter's queue. Its fields are guarded
// by the Limiter's lock; ready is closed once outcome is final.
type waiter struct {
	prev, next *waiter
	rank       uint8 // queue index: 0 critical, 1 standard, 2 sheddable
	queued     bool
	outcome    error // nil: granted a slot
	ready      chan struct{}
}

// finish takes w out of contention with outcome err and wakes it. The
// Limiter's lock must be held and w must no longer be queued.
func (w *waiter) finish(err error) {
	w.outcome = err
	close(w.ready)
}

// waitList is an intrusive FIFO of waiters with O(1) removal.
type waitList struct {
	head, tail *waiter
	len        int
}

func (l *waitList) pushBack(w *waiter) {
	w.prev, w.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	l.len++
	w.queued = true
}

func (l *waitList) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next, w.queued = nil, nil, false
	l.len--
}
