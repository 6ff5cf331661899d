package degrade

import "errors"

// Sentinel errors. Limiter.Acquire returns them bare so the request path
// does not allocate; the others wrap them with the operation and the names
// involved. Test with errors.Is.
var (
	// ErrQueueFull means a Limiter had no free slot and its queue was full,
	// or a waiter was pushed out of the full queue by a waiter of a higher
	// class. The router answers 503 with Retry-After.
	ErrQueueFull = errors.New("degrade: queue full")

	// ErrQueueTimeout means a waiter reached its deadline before a slot was
	// free. The router answers 503 with Retry-After.
	ErrQueueTimeout = errors.New("degrade: queue wait past deadline")

	// ErrBadTier means a tier outside 0–3, or a name ParseTier does not know.
	ErrBadTier = errors.New("degrade: bad tier")

	// ErrBadClass means a criticality class ParseClass does not know, or a
	// Class value outside the three defined.
	ErrBadClass = errors.New("degrade: bad class")

	// ErrNoSource means Controller.Run was called on a Controller built
	// without a SignalSource.
	ErrNoSource = errors.New("degrade: no signal source")
)
