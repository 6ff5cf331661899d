package replycache

import (
	"context"
	"math/bits"
	"sync"
	"time"
)

// LRUConfig configures an LRU. A zero field takes its default.
type LRUConfig struct {
	// MaxBytes bounds the bytes of all entries (key, body, content type and
	// about 200 bytes of bookkeeping each). Default 64 MiB. It is split
	// evenly among the shards; an entry larger than a shard's share is not
	// stored.
	MaxBytes int64
	// FreshTTL is how long an entry serves as fresh. Default 5m.
	FreshTTL time.Duration
	// StaleTTL is how long an entry is kept at all; past FreshTTL and
	// before StaleTTL it is stale. Default 1h, and never below FreshTTL.
	StaleTTL time.Duration
	// Shards is the number of independently locked parts, rounded up to a
	// power of two. Default 16.
	Shards int
}

func (c LRUConfig) withDefaults() LRUConfig {
	if c.MaxBytes <= 0 {
		c.MaxBytes = 64 << 20
	}
	if c.FreshTTL <= 0 {
		c.FreshTTL = 5 * time.Minute
	}
	if c.StaleTTL <= 0 {
		c.StaleTTL = time.Hour
	}
	c.StaleTTL = max(c.StaleTTL, c.FreshTTL)
	if c.Shards <= 0 {
		c.Shards = 16
	}
	c.Shards = 1 << bits.Len(uint(c.Shards-1))
	return c
}

// LRU is the in-process Store: a byte-bounded map of entries that evicts the
// least recently used first, in shards with a lock each. Get and Set are
// safe for concurrent use and take one shard's lock for a map lookup and a
// few pointer moves; neither allocates on a hit.
type LRU struct {
	cfg    LRUConfig
	shards []lruShard
}

var _ Store = (*LRU)(nil)

type lruShard struct {
	mu        sync.Mutex
	max       int64
	bytes     int64
	evictions uint64
	m         map[[32]byte]*node
	head      node // sentinel: head.next is the most recent, head.prev the least
}

type node struct {
	key        [32]byte
	e          Entry
	size       int64
	prev, next *node
}

// NewLRU returns an empty LRU.
func NewLRU(cfg LRUConfig) *LRU {
	cfg = cfg.withDefaults()
	c := &LRU{cfg: cfg, shards: make([]lruShard, cfg.Shards)}
	for i := range c.shards {
		s := &c.shards[i]
		s.max = cfg.MaxBytes / int64(cfg.Shards)
		s.m = make(map[[32]byte]*node)
		s.head.next, s.head.prev = &s.head, &s.head
	}
	return c
}

// Config returns the configuration in force, defaults filled.
func (c *LRU) Config() LRUConfig { return c.cfg }

func (c *LRU) shard(key [32]byte) *lruShard {
	return &c.shards[int(key[0])&(len(c.shards)-1)]
}

// Get returns the entry under key and whether it is fresh at now, and marks
// it recently used. An entry past StaleTTL is removed and reported missing.
func (c *LRU) Get(_ context.Context, key [32]byte, now time.Time) (Entry, bool, bool) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.m[key]
	if n == nil {
		return Entry{}, false, false
	}
	age := now.Sub(n.e.Stored)
	if age >= c.cfg.StaleTTL {
		s.remove(n)
		return Entry{}, false, false
	}
	s.unlink(n)
	s.pushFront(n)
	return n.e, age < c.cfg.FreshTTL, true
}

// Set stores e under key and evicts the least recently used entries of its
// shard until the shard is within its bound. An entry without Stored, or
// too large for a shard, is not stored (and removes what key held).
func (c *LRU) Set(_ context.Context, key [32]byte, e Entry) {
	s := c.shard(key)
	size := e.size()
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.m[key]; old != nil {
		s.remove(old)
	}
	if e.Stored.IsZero() || size > s.max {
		return
	}
	n := &node{key: key, e: e, size: size}
	s.m[key] = n
	s.pushFront(n)
	s.bytes += size
	for s.bytes > s.max {
		s.remove(s.head.prev)
		s.evictions++
	}
}

// LRUStats is an LRU's state at one moment.
type LRUStats struct {
	Entries   int
	Bytes     int64 // counted as for MaxBytes
	Evictions uint64
}

// Stats sums the shards' counts, locking each in turn.
func (c *LRU) Stats() LRUStats {
	var st LRUStats
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		st.Entries += len(s.m)
		st.Bytes += s.bytes
		st.Evictions += s.evictions
		s.mu.Unlock()
	}
	return st
}

// remove drops n from the shard. s.mu must be held.
func (s *lruShard) remove(n *node) {
	s.unlink(n)
	delete(s.m, n.key)
	s.bytes -= n.size
}

func (s *lruShard) unlink(n *node) {
	n.prev.next, n.next.prev = n.next, n.prev
	n.prev, n.next = nil, nil
}

func (s *lruShard) pushFront(n *node) {
	n.prev, n.next = &s.head, s.head.next
	s.head.next.prev = n
	s.head.next = n
}
