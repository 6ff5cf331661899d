package router

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/modelgate/modelgate/internal/mockllm"
)

// TestQuotaHoldsWithoutMaxTokens: 32 clients that send no max_tokens, for
// 30 s of a consumer's tokens per minute of 6,000. The tokens admitted —
// the upstream's own usage of every reply that got through — stay within
// the bucket's bound: its burst (6,000) plus its refill over 30 s (3,000),
// plus the largest single request. Requests reserve the route's
// default_max_tokens, so reservations cover the replies they settle with.
//
// The router's clock is a fake one that the test moves 30 s in about 3 s,
// capped at the end, so every admission falls within the 30 s.
func TestQuotaHoldsWithoutMaxTokens(t *testing.T) {
	const (
		tpm     = 6000
		span    = 30 * time.Second
		clients = 32
	)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var fake atomic.Int64 // nanoseconds since t0
	clk := testClock{now: func() time.Time { return t0.Add(time.Duration(fake.Load())) }}
	key := "sk-quota-32"
	g := newGateway(t, Config{
		Routes:    []Route{{Model: "chat", Service: "qwen"}},
		Consumers: []Consumer{{Name: "team", KeySHA256: sha256Hex(key), TPM: tpm}},
	}, WithClock(clk))
	g.mocks("qwen", 2, mockllm.Config{ReplyWords: 600}, nil)

	stop := make(chan struct{})
	var ticker sync.WaitGroup
	ticker.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if fake.Add(int64(100*time.Millisecond)) >= int64(span) {
					fake.Store(int64(span))
					return
				}
			}
		}
	})

	var admitted, largest, ok, refused atomic.Int64
	var wg sync.WaitGroup
	body := `{"model":"chat","messages":[{"role":"user","content":"tell me a long story"}]}`
	for range clients {
		wg.Go(func() {
			for fake.Load() < int64(span) {
				r := g.do("POST", "/v1/chat/completions", body, "Authorization", "Bearer "+key)
				switch r.StatusCode() {
				case 200:
					n := gjson.GetBytes(r.Body(), "usage.total_tokens").Int()
					if n <= 0 {
						t.Errorf("a reply without usage: %s", r.Body())
						return
					}
					ok.Add(1)
					admitted.Add(n)
					for l := largest.Load(); n > l && !largest.CompareAndSwap(l, n); l = largest.Load() {
					}
				case 429:
					refused.Add(1)
				default:
					t.Errorf("status %d: %s", r.StatusCode(), r.Body())
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	ticker.Wait()

	bound := int64(tpm + tpm*span/time.Minute)
	t.Logf("%d admitted (%d tokens, largest %d), %d refused; bound %d + %d", ok.Load(), admitted.Load(), largest.Load(), refused.Load(), bound, largest.Load())
	if refused.Load() == 0 {
		t.Fatal("no request was refused: the test did not load the quota")
	}
	if got := admitted.Load(); got > bound+largest.Load() {
		t.Fatalf("admitted %d real tokens in %v at tpm %d, over the bucket's bound %d + one request %d", got, span, tpm, bound, largest.Load())
	}
}

// testClock reads a test's own time; its timers run on the wall clock.
type testClock struct{ now func() time.Time }

func (c testClock) Now() time.Time { return c.now() }

func (c testClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
