package replycache_test

import (
	"context"
	"fmt"
	"time"

	"github.com/modelgate/modelgate/degrade/replycache"
)

// Two spellings of one request share a key within one scope (here the
// consumer "team-a"); the reply stored for one serves the other while
// fresh. Another consumer's identical request has another key.
func ExampleKey() {
	cache := replycache.NewLRU(replycache.LRUConfig{MaxBytes: 16 << 20, FreshTTL: time.Minute})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	sent := []byte(`{"model":"chat","temperature":0,"messages":[{"role":"user","content":"hi"}]}`)
	key, ok := replycache.Key("team-a", "chat", sent)
	if !ok {
		return
	}
	reply := []byte(`{"choices":[{"message":{"role":"assistant","content":"hello"}}]}`)
	cache.Set(context.Background(), key, replycache.Entry{Status: 200, ContentType: "application/json",
		Body: reply, Stored: now})

	again := []byte(`{ "messages": [ {"content": "hi", "role": "user"} ], "temperature": 0.0, "model": "chat", "store": true }`)
	key2, _ := replycache.Key("team-a", "chat", again)
	e, fresh, ok := cache.Get(context.Background(), key2, now.Add(30*time.Second))
	other, _ := replycache.Key("team-b", "chat", sent)
	fmt.Println(ok, fresh, replycache.Cacheable("chat", again), string(e.Body) == string(reply), other == key)
	// Output: true true true true false
}
