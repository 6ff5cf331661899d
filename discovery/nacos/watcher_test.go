package nacos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"go.uber.org/goleak"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/leaktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// fakeClient is an in-memory Nacos. With pushes off, changes are visible
// only through Instances, as when the SDK loses a push.
type fakeClient struct {
	mu       sync.Mutex
	services map[string][]model.Instance // by "GROUP@@name"
	subs     map[string]func()
	pushes   bool
	down     bool
	authFail bool // answer as Nacos does to a wrong password
	reads    atomic.Int64
	listed   chan struct{} // receives a value at each ListServices call, if not full
	queried  chan struct{} // likewise for Instances
}

func newFake(pushes bool) *fakeClient {
	return &fakeClient{services: map[string][]model.Instance{}, subs: map[string]func(){},
		pushes: pushes, listed: make(chan struct{}, 1), queried: make(chan struct{}, 1)}
}

var errDown = errors.New("nacos down")

// errBadPassword is what a refused login looks like.
var errBadPassword = fmt.Errorf("%w: 127.0.0.1:8848: login as \"nacos\" refused: 403 Forbidden: user not found", ErrAuth)

// fail is the error of a call, if any. The caller holds f.mu.
func (f *fakeClient) fail() error {
	switch {
	case f.down:
		return errDown
	case f.authFail:
		return errBadPassword
	}
	return nil
}

func (f *fakeClient) ListServices(group string) ([]string, error) {
	select {
	case f.listed <- struct{}{}:
	default:
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(); err != nil {
		return nil, err
	}
	var out []string
	for key := range f.services {
		if g, n := discovery.SplitServiceKey(key, ""); g == group {
			out = append(out, n)
		}
	}
	return out, nil
}

func (f *fakeClient) Subscribe(group, service string, cb func()) error {
	key := discovery.ServiceKey(group, service)
	f.mu.Lock()
	f.subs[key] = cb
	f.mu.Unlock()
	cb() // like the SDK: the first callback fires inside Subscribe
	return nil
}

func (f *fakeClient) Unsubscribe(group, service string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.subs, discovery.ServiceKey(group, service))
	return nil
}

func (f *fakeClient) Instances(group, service string) ([]model.Instance, error) {
	select {
	case f.queried <- struct{}{}:
	default:
	}
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(); err != nil {
		return nil, err
	}
	return f.services[discovery.ServiceKey(group, service)], nil
}

func (f *fakeClient) set(key string, list ...model.Instance) {
	f.mu.Lock()
	if list == nil {
		delete(f.services, key)
	} else {
		f.services[key] = list
	}
	cb := f.subs[key]
	push := f.pushes
	f.mu.Unlock()
	if push && cb != nil {
		cb()
	}
}

func mi(ip string, weight float64) model.Instance {
	return model.Instance{Ip: ip, Port: 8000, Weight: weight, Healthy: true, Enable: true}
}

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func start(t *testing.T, f *fakeClient, s Settings, opts ...Option) (*discovery.Pool, func()) {
	t.Helper()
	w, err := NewWatcher(f, s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	pool := discovery.NewPool()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, pool) }()
	return pool, func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
	}
}

// waitFor waits for the pool to satisfy cond, on pool change events.
func waitFor(t *testing.T, pool *discovery.Pool, within time.Duration, cond func(*discovery.Snapshot) bool) time.Duration {
	t.Helper()
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for s := pool.Snapshot(); !cond(s); {
		var err error
		if s, err = pool.WaitChange(ctx, s.Version); err != nil {
			t.Fatalf("condition not met within %v", within)
		}
	}
	return time.Since(begin)
}

func count(key string) func(*discovery.Snapshot) int {
	return func(s *discovery.Snapshot) int {
		if svc := s.Service(key); svc != nil {
			return len(svc.Instances)
		}
		return -1
	}
}

func TestReconcileFindsChangeWithoutPush(t *testing.T) {
	const key = "LLM@@qwen"
	f := newFake(false)
	f.set(key, mi("10.0.0.1", 1))
	pool, stop := start(t, f, Settings{ReconcileInterval: 50 * time.Millisecond, ReconcileRate: 1000, ListInterval: time.Hour})
	defer stop()
	n := count(key)
	waitFor(t, pool, 2*time.Second, func(s *discovery.Snapshot) bool { return n(s) == 1 })
	select {
	case <-pool.Synced():
	case <-time.After(2 * time.Second):
		t.Fatal("pool not synced after the first listing")
	}

	f.set(key, mi("10.0.0.1", 1), mi("10.0.0.2", 3)) // no callback fires
	took := waitFor(t, pool, 2*time.Second, func(s *discovery.Snapshot) bool { return n(s) == 2 })
	if took > time.Second {
		t.Errorf("change took %v to arrive with a 50ms reconcile interval", took)
	}
	if w := pool.Snapshot().Service(key).Instances[1].Weight; w != 3 {
		t.Errorf("weight = %v, want 3", w)
	}
}

func TestEmptyPolicy(t *testing.T) {
	const key = "LLM@@qwen"
	for _, tc := range []struct {
		policy   EmptyPolicy
		wantKept bool
	}{{EmptyKeep, true}, {EmptyApply, false}} {
		t.Run(string(tc.policy), func(t *testing.T) {
			f := newFake(true)
			f.set(key, mi("10.0.0.1", 1))
			clk := &clock{}
			pool, stop := start(t, f, Settings{Empty: tc.policy, EmptyGrace: time.Minute,
				ReconcileInterval: 20 * time.Millisecond, ReconcileRate: 1000, ListInterval: time.Hour}, WithClock(clk.now))
			defer stop()
			n := count(key)
			waitFor(t, pool, 2*time.Second, func(s *discovery.Snapshot) bool { return n(s) == 1 })

			f.set(key, []model.Instance{}...) // an "all gone" push
			if !tc.wantKept {
				waitFor(t, pool, 2*time.Second, func(s *discovery.Snapshot) bool { return n(s) == 0 })
				return
			}
			// Let several reconciles see the empty list within the grace period.
			v := pool.Snapshot().Version
			f.mu.Lock()
			f.pushes = false
			f.mu.Unlock()
			f.set(key, mi("10.0.0.9", 1)) // a change after the empty push proves reconciles ran
			waitFor(t, pool, 2*time.Second, func(s *discovery.Snapshot) bool { return s.Version > v })
			f.set(key, []model.Instance{}...)
			for i := range 3 { // still kept: the clock has not moved
				v = pool.Snapshot().Version
				if n(pool.Snapshot()) != 1 {
					t.Fatal("empty list applied within the grace period")
				}
				f.set(key, mi("10.0.0.9", float64(i+2)))
				waitFor(t, pool, 2*time.Second, func(s *discovery.Snapshot) bool { return s.Version > v })
				f.set(key, []model.Instance{}...)
			}
			next(t, f.queried, 2) // the first of them has seen the empty list
			if n(pool.Snapshot()) != 1 {
				t.Fatal("empty list applied within the grace period")
			}
			clk.advance(2 * time.Minute)
			waitFor(t, pool, 2*time.Second, func(s *discovery.Snapshot) bool { return n(s) == 0 })
		})
	}
}

// next waits until n more calls have signalled on ch.
func next(t *testing.T, ch chan struct{}, n int) {
	t.Helper()
	select { // drop a value left from before
	case <-ch:
	default:
	}
	for range n {
		select {
		case <-ch:
		case <-time.After(2 * time.Second):
			t.Fatal("no listing within 2s")
		}
	}
}

func TestNacosDownKeepsPoolAndVanishedServiceRetires(t *testing.T) {
	const a, b = "LLM@@a", "LLM@@b"
	f := newFake(true)
	f.set(a, mi("10.0.0.1", 1))
	f.set(b, mi("10.0.0.2", 1))
	clk := &clock{}
	pool, stop := start(t, f, Settings{EmptyGrace: time.Minute,
		ReconcileInterval: 20 * time.Millisecond, ReconcileRate: 1000, ListInterval: 20 * time.Millisecond}, WithClock(clk.now))
	defer stop()
	both := func(s *discovery.Snapshot) bool { return count(a)(s) == 1 && count(b)(s) == 1 }
	waitFor(t, pool, 2*time.Second, both)

	f.mu.Lock()
	f.down = true
	f.mu.Unlock()
	clk.advance(2 * time.Minute)
	next(t, f.listed, 3)
	if !both(pool.Snapshot()) {
		t.Fatal("pool changed while Nacos was down")
	}

	f.mu.Lock()
	f.down = false
	delete(f.services, b) // b vanishes from the listing
	f.mu.Unlock()
	next(t, f.listed, 2) // the first of them has seen b missing and started its grace
	if count(b)(pool.Snapshot()) != 1 {
		t.Fatal("vanished service dropped before its grace period")
	}
	clk.advance(2 * time.Minute)
	waitFor(t, pool, 2*time.Second, func(s *discovery.Snapshot) bool { return s.Service(b) == nil })
	if count(a)(pool.Snapshot()) != 1 {
		t.Fatal("service a lost")
	}
}

func TestBadEmptyPolicy(t *testing.T) {
	if _, err := NewWatcher(newFake(true), Settings{Empty: "drop"}); err == nil {
		t.Fatal("want an error for an unknown policy")
	}
}
