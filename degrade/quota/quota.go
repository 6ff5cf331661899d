package quota

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Quotas enforces consumers' requests and tokens per minute over a Store.
// It is safe for concurrent use.
type Quotas struct {
	store Store
	log   zerolog.Logger
}

// Option configures Quotas.
type Option func(*Quotas)

// WithLogger sets the logger for store failures when reservations are
// settled, which have no caller to return an error to (default: none).
func WithLogger(l zerolog.Logger) Option { return func(q *Quotas) { q.log = l } }

// New returns Quotas over store (nil: a new Memory).
func New(store Store, opts ...Option) *Quotas {
	if store == nil {
		store = NewMemory()
	}
	q := &Quotas{store: store, log: zerolog.Nop()}
	for _, o := range opts {
		o(q)
	}
	return q
}

// Reserve admits one request of consumer under lim at now, reserving
// estTokens tokens (at least 1) until the reply's usage is known. The router
// passes the prompt's estimated tokens plus the request's max_tokens (or
// max_completion_tokens, or the route's default): a reservation must fit
// whole — the bucket must hold min(estimate, TPM) — so a consumer near its
// limit is refused before the reply that would overrun it, not after.
//
// Over quota, it takes nothing and returns ErrExceeded (wrapped) with the
// time until the request would fit, for Retry-After (round it up to whole
// seconds). A store failure is returned wrapped; the router may then admit
// the request (fail open). With unlimited Limits it touches no store and
// returns a Reservation whose methods do nothing.
func (q *Quotas) Reserve(ctx context.Context, consumer string, lim Limits, estTokens int, now time.Time) (Reservation, time.Duration, error) {
	if lim.Unlimited() {
		return Reservation{}, 0, nil
	}
	est := max(estTokens, 1)
	if lim.TPM <= 0 {
		est = 0
	}
	wait, ok, err := q.store.Take(ctx, consumer, lim, est, now)
	switch {
	case err != nil:
		return Reservation{}, 0, fmt.Errorf("quota: reserve for %q: %w", consumer, err)
	case !ok:
		return Reservation{}, wait, fmt.Errorf("quota: consumer %q: %w", consumer, ErrExceeded)
	}
	return Reservation{t: &ticket{q: q, consumer: consumer, lim: lim, est: est}}, 0, nil
}

// Reservation is an admitted request's hold on its consumer's quota. Settle
// it once, with Commit or Cancel; later calls do nothing, and an unsettled
// reservation keeps its estimate charged. The zero Reservation (unlimited
// consumer) does nothing. It is safe to settle from any goroutine.
type Reservation struct{ t *ticket }

type ticket struct {
	q        *Quotas
	consumer string
	lim      Limits
	est      int
	settled  atomic.Bool
}

// Commit settles the reservation with the tokens the request really used
// (prompt and completion): the difference from the estimate is refunded, or
// charged, which may leave the bucket in debt, at most one minute's tokens.
// It never waits for quota.
func (r Reservation) Commit(actualTokens int) {
	if r.t == nil || r.t.lim.TPM <= 0 || !r.t.settled.CompareAndSwap(false, true) {
		return
	}
	r.t.give(0, r.t.est-max(actualTokens, 0))
}

// Cancel settles the reservation of a request that was turned away after
// Reserve (shed, queue full or timed out, no instance): its request and its
// tokens go back. A reply served from the cache is Commit(0): the request
// counts, no tokens do.
func (r Reservation) Cancel() {
	if r.t == nil || !r.t.settled.CompareAndSwap(false, true) {
		return
	}
	r.t.give(1, r.t.est)
}

func (t *ticket) give(requests, tokens int) {
	if requests == 0 && tokens == 0 {
		return
	}
	if err := t.q.store.Give(context.Background(), t.consumer, t.lim, requests, tokens); err != nil {
		t.q.log.Warn().Err(err).Str("consumer", t.consumer).Msg("quota: settling a reservation failed")
	}
}

// Estimated reports the tokens the reservation holds (0 when unlimited).
func (r Reservation) Estimated() int {
	if r.t == nil {
		return 0
	}
	return r.t.est
}
