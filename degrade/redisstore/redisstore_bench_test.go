package redisstore

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/modelgate/modelgate/bench/harness"
	"github.com/modelgate/modelgate/degrade/quota"
	"github.com/modelgate/modelgate/degrade/replycache"
	"github.com/modelgate/modelgate/internal/redistest"
)

// redisBench runs the op that setup returns b.N times from 16 goroutines
// against a real redis-server and reports the server's CPU per operation,
// the figure the Redis load of many replicas is planned from
// (docs/scale.md).
func redisBench(b *testing.B, setup func(rdb *redis.Client) func(i int)) {
	srv := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 16})
	defer rdb.Close()
	op := setup(rdb)
	op(0) // warm: scripts loaded, a connection open
	cpu0, err := harness.CPUOf(srv.PID())
	if err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(8) // × GOMAXPROCS goroutines, as many replicas' requests
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(time.Now().UnixNano() % 1000)
		for pb.Next() {
			op(i % 1000)
			i++
		}
	})
	b.StopTimer()
	cpu1, err := harness.CPUOf(srv.PID())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "redis-cpu-µs/op")
}

// quotaBench runs op on a Quota, for 1,000 consumers of huge limits.
func quotaBench(b *testing.B, op func(q *Quota, consumer string, lim quota.Limits) error) {
	lim := quota.Limits{RPM: 1 << 30, TPM: 1 << 30}
	redisBench(b, func(rdb *redis.Client) func(int) {
		q, err := NewQuota(rdb, QuotaSettings{Timeout: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		return func(i int) {
			if err := op(q, "c"+strconv.Itoa(i), lim); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRedisQuotaTake is one admission of a limited consumer (the Lua
// script that refills, checks and takes).
func BenchmarkRedisQuotaTake(b *testing.B) {
	quotaBench(b, func(q *Quota, consumer string, lim quota.Limits) error {
		_, ok, err := q.Take(context.Background(), consumer, lim, 50, time.Now())
		if err == nil && !ok {
			err = errors.New("refused under huge limits")
		}
		return err
	})
}

// BenchmarkRedisQuotaGive is the settlement of an admission whose
// estimate was off (the Lua script that gives tokens back).
func BenchmarkRedisQuotaGive(b *testing.B) {
	quotaBench(b, func(q *Quota, consumer string, lim quota.Limits) error {
		return q.Give(context.Background(), consumer, lim, 0, 20)
	})
}

// BenchmarkRedisCacheGet is one reply-cache lookup that hits a 1 KiB
// entry, over 1,000 entries.
func BenchmarkRedisCacheGet(b *testing.B) {
	body := make([]byte, 1024)
	key := func(k int) [32]byte { return [32]byte{byte(k), byte(k >> 8)} }
	redisBench(b, func(rdb *redis.Client) func(int) {
		ctx := context.Background()
		c := NewCache(rdb, CacheSettings{Timeout: time.Second})
		for k := range 1000 {
			c.Set(ctx, key(k), replycache.Entry{Status: 200, ContentType: "application/json", Body: body, Stored: time.Now()})
		}
		return func(i int) {
			if _, _, ok := c.Get(ctx, key(i), time.Now()); !ok {
				b.Fatal("miss")
			}
		}
	})
}
