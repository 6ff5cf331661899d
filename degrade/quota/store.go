package quota

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// Store holds the consumers' buckets. The in-process Memory is the default;
// a shared store (Redis, with the same arithmetic in a script) lets several
// gateways enforce one quota. Implementations must be safe for concurrent
// use, and each call must be atomic for its consumer.
type Store interface {
	// Take refills the consumer's buckets to now, then takes one request
	// and tokens tokens if both fit (a zero limit always fits; tokens fit
	// when the bucket holds min(tokens, TPM)); otherwise it takes nothing
	// and returns how long until they would fit.
	Take(ctx context.Context, consumer string, lim Limits, tokens int, now time.Time) (retryAfter time.Duration, ok bool, err error)
	// Give puts requests and tokens back, each bucket up to its limit;
	// negative counts charge them, taking a bucket no deeper than minus its
	// limit (or than it already was).
	Give(ctx context.Context, consumer string, lim Limits, requests, tokens int) error
}

// Memory is the in-process Store: a map of consumers in shards, each with a
// lock. Memory grows with the number of distinct consumers, which are
// configured, not chosen by clients. The zero value is not usable; call
// NewMemory.
type Memory struct {
	seed   maphash.Seed
	shards [16]memShard
}

var _ Store = (*Memory)(nil)

type memShard struct {
	mu       sync.Mutex
	accounts map[string]*account
}

type account struct{ requests, tokens bucket }

// NewMemory returns an empty Memory.
func NewMemory() *Memory {
	m := &Memory{seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].accounts = make(map[string]*account)
	}
	return m
}

// lock locks the consumer's shard and returns its account, creating it
// with full buckets. The caller unlocks the shard.
func (m *Memory) lock(consumer string) (*memShard, *account) {
	s := &m.shards[maphash.String(m.seed, consumer)%uint64(len(m.shards))]
	s.mu.Lock()
	a := s.accounts[consumer]
	if a == nil {
		a = &account{}
		s.accounts[consumer] = a
	}
	return s, a
}

// Take implements Store.
func (m *Memory) Take(_ context.Context, consumer string, lim Limits, tokens int, now time.Time) (time.Duration, bool, error) {
	s, a := m.lock(consumer)
	defer s.mu.Unlock()
	var wait time.Duration
	if lim.RPM > 0 {
		a.requests.refill(lim.RPM, now)
		wait = a.requests.wait(lim.RPM, 1)
	}
	if lim.TPM > 0 {
		a.tokens.refill(lim.TPM, now)
		wait = max(wait, a.tokens.wait(lim.TPM, float64(tokens)))
	}
	if wait > 0 {
		return wait, false, nil
	}
	if lim.RPM > 0 {
		a.requests.take(1)
	}
	if lim.TPM > 0 {
		a.tokens.take(float64(tokens))
	}
	return 0, true, nil
}

// Give implements Store.
func (m *Memory) Give(_ context.Context, consumer string, lim Limits, requests, tokens int) error {
	s, a := m.lock(consumer)
	defer s.mu.Unlock()
	if lim.RPM > 0 && requests != 0 {
		a.requests.add(lim.RPM, float64(requests))
	}
	if lim.TPM > 0 && tokens != 0 {
		a.tokens.add(lim.TPM, float64(tokens))
	}
	return nil
}
