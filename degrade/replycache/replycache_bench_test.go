package replycache_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/degrade/replycache"
)

// chat1K is a typical chat request of about 1 KB.
var chat1K = []byte(`{
  "model": "chat",
  "messages": [
    {"role": "system", "content": "You are a helpful assistant. Answer in at most three sentences and cite the source document by its title when you use it."},
    {"role": "user", "content": "` + strings.Repeat("Summarise the quarterly report for the board. ", 14) + `"},
    {"role": "assistant", "content": "Revenue grew 12% on the quarter; costs were flat; the outlook is unchanged."},
    {"role": "user", "content": "And the risks?"}
  ],
  "temperature": 0,
  "max_tokens": 256,
  "stream": false,
  "user": "team-a",
  "stop": ["\n\n"]
}`)

func BenchmarkKey(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(chat1K)))
	for b.Loop() {
		if _, ok := replycache.Key("", "chat", chat1K); !ok {
			b.Fatal("not ok")
		}
	}
}

// BenchmarkHit is the added latency of a cache hit: Cacheable, Key and Get
// of a 1 KB chat request.
func BenchmarkHit(b *testing.B) {
	c := replycache.NewLRU(replycache.LRUConfig{})
	k, _ := replycache.Key("", "chat", chat1K)
	now := time.Now()
	c.Set(ctx, k, entry(strings.Repeat("x", 600), now))
	b.ReportAllocs()
	for b.Loop() {
		if !replycache.Cacheable("chat", chat1K) {
			b.Fatal("not cacheable")
		}
		k, _ := replycache.Key("", "chat", chat1K)
		if _, fresh, ok := c.Get(ctx, k, now); !ok || !fresh {
			b.Fatal("miss")
		}
	}
}

// BenchmarkGetParallel compares one lock with sharded locks under parallel
// hits on many keys.
func BenchmarkGetParallel(b *testing.B) {
	for _, shards := range []int{1, 16} {
		b.Run(fmt.Sprint("shards=", shards), func(b *testing.B) {
			c := replycache.NewLRU(replycache.LRUConfig{Shards: shards})
			now := time.Now()
			keys := make([][32]byte, 1024)
			for i := range keys {
				keys[i] = keyN(i)
				c.Set(ctx, keys[i], entry("reply", now))
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					c.Get(ctx, keys[i%len(keys)], now)
					i++
				}
			})
		})
	}
}

func BenchmarkCacheable(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		replycache.Cacheable("chat", chat1K)
	}
}
