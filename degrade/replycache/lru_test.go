package replycache_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/degrade/replycache"
)

var (
	ctx = context.Background()
	t0  = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

func keyN(i int) [32]byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(b[:])
}

func entry(body string, stored time.Time) replycache.Entry {
	return replycache.Entry{Status: 200, ContentType: "application/json", Body: []byte(body), Stored: stored}
}

func TestLRUFreshStale(t *testing.T) {
	c := replycache.NewLRU(replycache.LRUConfig{FreshTTL: time.Minute, StaleTTL: time.Hour})
	k := keyN(1)
	c.Set(ctx, k, entry("hello", t0))
	for _, tc := range []struct {
		at        time.Duration
		fresh, ok bool
	}{
		{0, true, true},
		{time.Minute - 1, true, true},
		{time.Minute, false, true},
		{time.Hour - 1, false, true},
		{time.Hour, false, false},
		{0, false, false}, // an expired entry is gone
	} {
		e, fresh, ok := c.Get(ctx, k, t0.Add(tc.at))
		if fresh != tc.fresh || ok != tc.ok {
			t.Fatalf("at %v: fresh %v ok %v, want %v %v", tc.at, fresh, ok, tc.fresh, tc.ok)
		}
		if ok && string(e.Body) != "hello" {
			t.Fatalf("body %q", e.Body)
		}
	}
	if st := c.Stats(); st.Entries != 0 || st.Bytes != 0 {
		t.Fatalf("after expiry %+v", st)
	}
	// No Stored time: not stored.
	c.Set(ctx, k, entry("x", time.Time{}))
	if _, _, ok := c.Get(ctx, k, t0); ok {
		t.Fatal("stored an entry without time")
	}
}

func TestLRUDefaults(t *testing.T) {
	cfg := replycache.NewLRU(replycache.LRUConfig{FreshTTL: 2 * time.Hour, Shards: 5}).Config()
	if cfg.MaxBytes != 64<<20 || cfg.StaleTTL != 2*time.Hour || cfg.Shards != 8 {
		t.Fatalf("config %+v", cfg)
	}
}

func TestLRUEvictionOrder(t *testing.T) {
	// One shard, room for three 1000-byte entries (each counts about 1.2 KB).
	c := replycache.NewLRU(replycache.LRUConfig{MaxBytes: 3 * 1300, Shards: 1})
	body := string(make([]byte, 1000))
	for i := range 3 {
		c.Set(ctx, keyN(i), entry(body, t0))
	}
	c.Get(ctx, keyN(0), t0) // 0 is now the most recent; 1 the least
	c.Set(ctx, keyN(3), entry(body, t0))
	present := func() string {
		s := ""
		for i := range 4 {
			if _, _, ok := c.Get(ctx, keyN(i), t0); ok {
				s += fmt.Sprint(i)
			}
		}
		return s
	}
	if got := present(); got != "023" {
		t.Fatalf("present %s, want 023", got)
	}
	if st := c.Stats(); st.Entries != 3 || st.Evictions != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Replacing an entry counts its new size, not both.
	c.Set(ctx, keyN(0), entry("small", t0))
	if st := c.Stats(); st.Entries != 3 || st.Bytes != 2*(1000+16+32+192)+(5+16+32+192) {
		t.Fatalf("after replace %+v", st)
	}
	// Too large for the shard: not stored, and the old entry goes.
	c.Set(ctx, keyN(2), entry(string(make([]byte, 4000)), t0))
	if _, _, ok := c.Get(ctx, keyN(2), t0); ok {
		t.Fatal("oversized entry stored")
	}
}

func TestLRUByteBound(t *testing.T) {
	const maxBytes = 1 << 20
	c := replycache.NewLRU(replycache.LRUConfig{MaxBytes: maxBytes})
	for i := range 100_000 {
		body := fmt.Sprintf(`{"id":%d,"choices":[{"message":{"content":"%0*d"}}]}`, i, i%900, i)
		c.Set(ctx, keyN(i), entry(body, t0))
		if i%1000 == 0 {
			if b := c.Stats().Bytes; b > maxBytes {
				t.Fatalf("after %d entries: %d bytes", i, b)
			}
		}
	}
	st := c.Stats()
	if st.Bytes > maxBytes || st.Bytes < maxBytes*8/10 || st.Evictions == 0 {
		t.Fatalf("final %+v", st)
	}
	// The most recent entries are there.
	if _, _, ok := c.Get(ctx, keyN(99_999), t0); !ok {
		t.Fatal("latest entry evicted")
	}
	t.Logf("%d entries, %d bytes, %d evictions", st.Entries, st.Bytes, st.Evictions)
}

func TestLRUConcurrent(t *testing.T) {
	c := replycache.NewLRU(replycache.LRUConfig{MaxBytes: 64 << 10, Shards: 4})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := keyN((g*7 + i) % 300)
				if i%3 == 0 {
					c.Set(ctx, k, entry(fmt.Sprint(i), t0))
				} else if e, _, ok := c.Get(ctx, k, t0); ok && e.Status != 200 {
					t.Errorf("entry %+v", e)
				}
			}
		})
	}
	wg.Wait()
	if b := c.Stats().Bytes; b > 64<<10 {
		t.Fatalf("%d bytes", b)
	}
}
