// Package lbtest holds fakes and helpers shared by the balancer's tests and
// those of its policies.
package lbtest

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/fakeclock"
)

// Clock is the shared fake clock; it moves only by Advance.
type Clock = fakeclock.Clock

// NewClock returns a clock at an arbitrary fixed time.
func NewClock() *Clock { return fakeclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) }

// Rand returns a seeded source for balancer.WithRand; it is not safe for
// concurrent use.
func Rand(seed uint64) func() uint64 { return rand.New(rand.NewPCG(seed, seed^0x5eed)).Uint64 }

// Service is the service name, and Key its pool key, that Inst uses.
const (
	Service = "qwen"
	Key     = "LLM@@qwen"
)

// Inst returns a healthy, enabled instance of Service at 10.0.0.n:8000 with
// weight w and metadata from key, value pairs.
func Inst(n int, w float64, kv ...string) *discovery.Instance {
	meta := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		meta[kv[i]] = kv[i+1]
	}
	return &discovery.Instance{Service: Service, Host: "10.0.0." + strconv.Itoa(n), Port: 8000,
		Weight: w, Healthy: true, Enabled: true, Metadata: meta}
}

// ID returns the ID of Inst(n, …).
func ID(n int) string { return Key + "#10.0.0." + strconv.Itoa(n) + ":8000" }

// Pool returns a pool holding instances as Service.
func Pool(instances ...*discovery.Instance) *discovery.Pool {
	p := discovery.NewPool()
	p.Update(Key, instances)
	return p
}

// Count picks n times with req, reporting res for each, and counts the
// picks by key(instance). It fails the test on a pick error.
func Count(t testing.TB, p balancer.Picker, req *balancer.Request, n int, res balancer.Result,
	key func(*discovery.Instance) string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		picked, err := p.Pick(req)
		if err != nil {
			t.Fatalf("pick: %v", err)
		}
		got[key(picked.Instance)]++
		picked.Done(res)
	}
	return got
}

// ByID and ByVersion are keys for Count.
func ByID(in *discovery.Instance) string      { return in.ID() }
func ByVersion(in *discovery.Instance) string { return in.Version }

// Share fails the test unless got/n is within tol of want.
func Share(t testing.TB, what string, got, n int, want, tol float64) {
	t.Helper()
	if share := float64(got) / float64(n); math.Abs(share-want) > tol {
		t.Errorf("%s: share %.4f, want %.4f ± %.3f (%d of %d)", what, share, want, tol, got, n)
	}
}
