package redisstore

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/modelgate/modelgate/degrade/quota"
	"github.com/modelgate/modelgate/degrade/replycache"
	"github.com/modelgate/modelgate/internal/redistest"
	"github.com/modelgate/modelgate/internal/testkit"
)

func client(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// admitted runs 32 clients spread over stores for d, each asking for 50
// tokens at a time under tpm 6000, and returns the tokens admitted.
func admitted(t *testing.T, stores []quota.Store, consumer string, d time.Duration) int64 {
	t.Helper()
	lim := quota.Limits{TPM: 6000}
	var total atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for i := range 32 {
		s := stores[i%len(stores)]
		wg.Go(func() {
			for time.Now().Before(end) {
				_, ok, err := s.Take(context.Background(), consumer, lim, 50, time.Now())
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					total.Add(50)
				} else {
					time.Sleep(5 * time.Millisecond) // a client backing off, not a synchronisation
				}
			}
		})
	}
	wg.Wait()
	return total.Load()
}

// Three replicas sharing one Redis admit what one process alone admits
// under the same load (without Redis: three times as much).
func TestSharedQuotaAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	var stores []quota.Store
	for range 3 {
		q, err := NewQuota(client(t, srv.Addr), QuotaSettings{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, q)
	}
	const d = 5 * time.Second
	alone := admitted(t, []quota.Store{quota.NewMemory()}, "team-a", d)
	shared := admitted(t, stores, "team-a", d)
	separate := admitted(t, []quota.Store{quota.NewMemory(), quota.NewMemory(), quota.NewMemory()}, "team-a", d)
	t.Logf("tokens admitted in %v at tpm 6000: one process %d, three sharing Redis %d, three apart %d", d, alone, shared, separate)
	if diff := float64(shared-alone) / float64(alone); diff < -0.02 || diff > 0.02 {
		t.Fatalf("shared quota admitted %d, one process %d: %.1f%% apart, want within 2%%", shared, alone, 100*diff)
	}
	if separate < 2*alone {
		t.Fatalf("three separate processes admitted only %d (one: %d): the test does not tell shared from separate", separate, alone)
	}
}

func TestQuotaRefusesAndGivesBack(t *testing.T) {
	srv := redistest.Start(t)
	q, err := NewQuota(client(t, srv.Addr), QuotaSettings{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lim := quota.Limits{RPM: 2, TPM: 100}
	for i := range 2 {
		if _, ok, err := q.Take(ctx, "c", lim, 40, time.Now()); !ok || err != nil {
			t.Fatalf("take %d: %v %v", i, ok, err)
		}
	}
	wait, ok, err := q.Take(ctx, "c", lim, 10, time.Now())
	if ok || err != nil || wait < 20*time.Second || wait > 31*time.Second {
		t.Fatalf("third request of rpm 2: ok=%v wait=%v err=%v, want refused for ~30s", ok, wait, err)
	}
	if _, ok, _ := q.Take(ctx, "other", lim, 10, time.Now()); !ok {
		t.Fatal("another consumer shares the first one's bucket")
	}
	if err := q.Give(ctx, "c", lim, 1, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := q.Take(ctx, "c", lim, 10, time.Now()); !ok {
		t.Fatal("a request given back is not available again")
	}
	if _, err := NewQuota(nil, QuotaSettings{Fallback: "sometimes"}); err == nil {
		t.Fatal("want an error for an unknown fallback")
	}
}

func TestRedisKilledFallsBackAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	for _, tc := range []struct {
		fallback Fallback
		admits   bool
	}{{FallbackLocal, true}, {FallbackOpen, true}, {FallbackClosed, false}} {
		t.Run(string(tc.fallback), func(t *testing.T) {
			var logs testkit.Buffer
			set := metrics.NewSet()
			q, err := NewQuota(client(t, srv.Addr), QuotaSettings{Fallback: tc.fallback}, WithLogger(zerolog.New(&logs)), WithMetrics(set))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			lim := quota.Limits{TPM: 1000}
			if _, ok, err := q.Take(ctx, "c", lim, 10, time.Now()); !ok || err != nil {
				t.Fatalf("take with Redis up: %v %v", ok, err)
			}
			srv.Kill()
			for range 3 {
				_, ok, err := q.Take(ctx, "c", lim, 10, time.Now())
				if err != nil || ok != tc.admits {
					t.Fatalf("take with Redis down: ok=%v err=%v, want ok=%v", ok, err, tc.admits)
				}
			}
			var b bytes.Buffer
			set.WritePrometheus(&b)
			if !strings.Contains(b.String(), `modelgate_redis_fallbacks_total{store="quota"} 3`) ||
				!strings.Contains(b.String(), `modelgate_redis_up{store="quota"} 0`) {
				t.Fatalf("fallbacks not counted:\n%s", b.String())
			}
			if strings.Count(logs.String(), "redis unreachable") != 1 {
				t.Fatalf("want one outage line:\n%s", logs.String())
			}
			srv.Restart(t)
			if !testkit.Await(10*time.Second, 20*time.Millisecond, func() bool {
				_, _, _ = q.Take(ctx, "c", lim, 10, time.Now()) // a take notices the recovery
				return strings.Contains(logs.String(), "redis answers again")
			}) {
				t.Fatalf("no recovery within 10s:\n%s", logs.String())
			}
		})
	}
}

func TestCacheSharedAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a := NewCache(client(t, srv.Addr), CacheSettings{Timeout: time.Second, FreshTTL: time.Minute, StaleTTL: time.Hour, MaxEntryBytes: 1000})
	b := NewCache(client(t, srv.Addr), CacheSettings{Timeout: time.Second, FreshTTL: time.Minute, StaleTTL: time.Hour, MaxEntryBytes: 1000})
	ctx := context.Background()
	now := time.Now()
	k1, k2 := [32]byte{1}, [32]byte{2} // the keys of one request in two consumers' scopes
	a.Set(ctx, k1, replycache.Entry{Status: 200, ContentType: "text/event-stream", Body: []byte("data: hi\n\n"), Stream: true, Stored: now})
	e, fresh, ok := b.Get(ctx, k1, now)
	if !ok || !fresh || string(e.Body) != "data: hi\n\n" || !e.Stream || e.ContentType != "text/event-stream" || e.Status != 200 {
		t.Fatalf("entry stored through one replica, read through another: %+v fresh=%v ok=%v", e, fresh, ok)
	}
	if _, _, ok := b.Get(ctx, k2, now); ok {
		t.Fatal("another consumer's key hit")
	}
	if _, fresh, ok := b.Get(ctx, k1, now.Add(2*time.Minute)); !ok || fresh {
		t.Fatalf("past FreshTTL: fresh=%v ok=%v, want stale", fresh, ok)
	}
	if _, _, ok := b.Get(ctx, k1, now.Add(2*time.Hour)); ok {
		t.Fatal("past StaleTTL still served")
	}
	a.Set(ctx, k2, replycache.Entry{Status: 200, Body: bytes.Repeat([]byte("x"), 2000), Stored: now})
	if _, _, ok := b.Get(ctx, k2, now); ok {
		t.Fatal("an entry over MaxEntryBytes was stored")
	}
	if ttl := client(t, srv.Addr).PTTL(ctx, a.key(k1)).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("entry expires in %v, want ~StaleTTL", ttl)
	}
	srv.Kill()
	if _, _, ok := b.Get(ctx, k1, now); ok {
		t.Fatal("a hit with Redis down")
	}
	a.Set(ctx, k1, replycache.Entry{Status: 200, Body: []byte("y"), Stored: now}) // must not block or panic
}
