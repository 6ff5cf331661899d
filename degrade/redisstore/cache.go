package redisstore

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/modelgate/modelgate/degrade/replycache"
)

// CacheSettings tune a Cache. Zero values take the defaults.
type CacheSettings struct {
	Prefix   string        // key prefix; default "modelgate:reply:"
	Timeout  time.Duration // per call; default 50ms
	FreshTTL time.Duration // as replycache.LRUConfig; default 5m
	StaleTTL time.Duration // Redis expires the entry then; default 1h, never below FreshTTL
	// MaxEntryBytes is the largest reply stored; default 1 MiB. Bound the
	// whole cache with Redis's own maxmemory and an LRU eviction policy.
	MaxEntryBytes int
}

// Cache is a replycache.Store in Redis: one string per entry under its
// key (the key already carries the consumer's scope, so tenants stay
// apart), expiring at StaleTTL. Redis failures are misses. It is safe for
// concurrent use.
type Cache struct {
	rdb    redis.UniversalClient
	opts   CacheSettings
	health *health
}

var _ replycache.Store = (*Cache)(nil)

// NewCache returns a Cache over rdb.
func NewCache(rdb redis.UniversalClient, opts CacheSettings, with ...Option) *Cache {
	if opts.Prefix == "" {
		opts.Prefix = "modelgate:reply:"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 50 * time.Millisecond
	}
	if opts.FreshTTL <= 0 {
		opts.FreshTTL = 5 * time.Minute
	}
	if opts.StaleTTL <= 0 {
		opts.StaleTTL = time.Hour
	}
	opts.StaleTTL = max(opts.StaleTTL, opts.FreshTTL)
	if opts.MaxEntryBytes <= 0 {
		opts.MaxEntryBytes = 1 << 20
	}
	return &Cache{rdb: rdb, opts: opts, health: newHealth("cache", collect(with))}
}

func (c *Cache) key(k [32]byte) string { return c.opts.Prefix + hex.EncodeToString(k[:]) }

// Entry encoding: status (2 bytes), stream flag (1), stored unix nanos (8),
// content-type length (2), content type, body.
const headerLen = 13

func encode(e replycache.Entry) []byte {
	b := make([]byte, headerLen, headerLen+len(e.ContentType)+len(e.Body))
	binary.BigEndian.PutUint16(b[0:], uint16(e.Status))
	if e.Stream {
		b[2] = 1
	}
	binary.BigEndian.PutUint64(b[3:], uint64(e.Stored.UnixNano()))
	binary.BigEndian.PutUint16(b[11:], uint16(len(e.ContentType)))
	b = append(b, e.ContentType...)
	return append(b, e.Body...)
}

var errCorrupt = errors.New("redisstore: corrupt cache entry")

func decode(b []byte) (replycache.Entry, error) {
	if len(b) < headerLen {
		return replycache.Entry{}, errCorrupt
	}
	ct := int(binary.BigEndian.Uint16(b[11:]))
	if len(b) < headerLen+ct {
		return replycache.Entry{}, errCorrupt
	}
	return replycache.Entry{
		Status:      int(binary.BigEndian.Uint16(b[0:])),
		Stream:      b[2] == 1,
		Stored:      time.Unix(0, int64(binary.BigEndian.Uint64(b[3:]))),
		ContentType: string(b[headerLen : headerLen+ct]),
		Body:        b[headerLen+ct:],
	}, nil
}

// Get implements replycache.Store.
func (c *Cache) Get(_ context.Context, key [32]byte, now time.Time) (replycache.Entry, bool, bool) {
	ctx, cancel := callContext(c.opts.Timeout)
	defer cancel()
	b, err := c.rdb.Get(ctx, c.key(key)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		c.health.ok()
		return replycache.Entry{}, false, false
	case err != nil:
		c.health.failed(err)
		return replycache.Entry{}, false, false
	}
	c.health.ok()
	e, err := decode(b)
	if err != nil {
		return replycache.Entry{}, false, false
	}
	age := now.Sub(e.Stored)
	if age >= c.opts.StaleTTL {
		return replycache.Entry{}, false, false
	}
	return e, age < c.opts.FreshTTL, true
}

// Set implements replycache.Store.
func (c *Cache) Set(_ context.Context, key [32]byte, e replycache.Entry) {
	if e.Stored.IsZero() || len(e.Body)+len(e.ContentType) > c.opts.MaxEntryBytes || len(e.ContentType) > 0xffff {
		return
	}
	ctx, cancel := callContext(c.opts.Timeout)
	defer cancel()
	ttl := c.opts.StaleTTL - time.Since(e.Stored)
	if ttl <= 0 {
		return
	}
	if err := c.rdb.Set(ctx, c.key(key), encode(e), ttl).Err(); err != nil {
		c.health.failed(err)
		return
	}
	c.health.ok()
}
