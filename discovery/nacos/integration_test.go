package nacos

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/nacostest"
	"github.com/modelgate/modelgate/internal/testkit"
)

// These tests run against a real Nacos server (see internal/nacostest).

// runWatcher starts a Watcher on a real SDK client and returns its pool.
func runWatcher(t *testing.T, addr string, s Settings, opts ...Option) (*discovery.Pool, *Watcher) {
	t.Helper()
	return runWatcherOn(t, ClientConfig{Servers: []string{addr}}, s, opts...)
}

// runWatcherOn is runWatcher with a client config of the test's own.
func runWatcherOn(t *testing.T, cfg ClientConfig, s Settings, opts ...Option) (*discovery.Pool, *Watcher) {
	t.Helper()
	dir := t.TempDir()
	cfg.CacheDir, cfg.LogDir = filepath.Join(dir, "cache"), filepath.Join(dir, "log")
	client, err := Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.ReconcileInterval == 0 {
		s.ReconcileInterval = time.Second
	}
	if s.ListInterval == 0 {
		s.ListInterval = time.Second
	}
	w, err := NewWatcher(client, s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	pool := discovery.NewPool()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, pool) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
		client.Close()
	})
	return pool, w
}

func instances(pool *discovery.Pool, key string) []*discovery.Instance {
	if svc := pool.Snapshot().Service(key); svc != nil {
		return svc.Instances
	}
	return nil
}

func TestRealNacosLifecycle(t *testing.T) {
	addr := nacostest.Addr(t)
	group := testkit.UniqueGroup("IT")
	key := discovery.ServiceKey(group, "qwen")
	a := nacostest.Register(t, addr, group, "qwen", "127.0.0.1", 41001, 3, map[string]string{"version": "v1", "gpu": "a100"})
	b := nacostest.Register(t, addr, group, "qwen", "127.0.0.1", 41002, 1, map[string]string{"version": "v2"})

	pool, _ := runWatcher(t, addr, Settings{Groups: []string{group}, Empty: EmptyApply})
	waitFor(t, pool, 10*time.Second, func(s *discovery.Snapshot) bool { return count(key)(s) == 2 })
	got := instances(pool, key)
	if got[0].Version != "v1" || got[0].Tags["gpu"] != "a100" || got[0].Weight != 3 || got[1].Version != "v2" {
		t.Fatalf("metadata not carried: %+v / %+v", got[0], got[1])
	}

	begin := time.Now()
	b.Deregister()
	waitFor(t, pool, 2*time.Second, func(s *discovery.Snapshot) bool { return count(key)(s) == 1 })
	t.Logf("deregistration reached the pool in %v", time.Since(begin))

	b.Reregister()
	waitFor(t, pool, 2*time.Second, func(s *discovery.Snapshot) bool { return count(key)(s) == 2 })

	// Nacos sends subscribers only enabled instances: a disabled one leaves
	// the list, and comes back when enabled again.
	a.Update(3, false)
	waitFor(t, pool, 2*time.Second, func(s *discovery.Snapshot) bool {
		l := instances(pool, key)
		return len(l) == 1 && l[0].Port == 41002
	})
	a.Update(5, true)
	waitFor(t, pool, 2*time.Second, func(s *discovery.Snapshot) bool {
		l := instances(pool, key)
		return len(l) == 2 && l[0].Weight == 5
	})

	// Every instance gone, under EmptyApply: the pool empties.
	a.Deregister()
	b.Deregister()
	waitFor(t, pool, 3*time.Second, func(s *discovery.Snapshot) bool { return count(key)(s) <= 0 })
}

func TestRealNacosEmptyKeep(t *testing.T) {
	addr := nacostest.Addr(t)
	group := testkit.UniqueGroup("ITKEEP")
	key := discovery.ServiceKey(group, "qwen")
	a := nacostest.Register(t, addr, group, "qwen", "127.0.0.1", 41011, 1, nil)
	set := metrics.NewSet()
	pool, w := runWatcher(t, addr, Settings{Groups: []string{group}, Empty: EmptyKeep, EmptyGrace: time.Hour}, WithMetrics(set))
	waitFor(t, pool, 10*time.Second, func(s *discovery.Snapshot) bool { return count(key)(s) == 1 })

	a.Deregister()
	testkit.Eventually(t, 5*time.Second, "empty list held", func() bool { return w.held() == 1 })
	if n := count(key)(pool.Snapshot()); n != 1 {
		t.Fatalf("pool has %d instances, want the last good 1", n)
	}
	// A new registration replaces the held list at once.
	a.Reregister()
	testkit.Eventually(t, 5*time.Second, "hold released", func() bool { return w.held() == 0 })
	if n := count(key)(pool.Snapshot()); n != 1 {
		t.Fatalf("pool has %d instances", n)
	}
}

// A dead first server: listing, reads and pushes fail over to the second.
// Pushes alone carry changes here: the backstop is off.
func TestRealNacosFailoverAndPushOnly(t *testing.T) {
	addr := nacostest.Addr(t)
	dead := testkit.FreeAddr(t)
	group := testkit.UniqueGroup("ITFAIL")
	key := discovery.ServiceKey(group, "qwen")
	a := nacostest.Register(t, addr, group, "qwen", "127.0.0.1", 41031, 1, nil)
	defer func(f func(int) int) { firstServer = f }(firstServer)
	firstServer = func(int) int { return 0 } // the HTTP reads try the dead one first
	pool, _ := runWatcherOn(t, ClientConfig{Servers: []string{dead, addr}},
		Settings{Groups: []string{group}, Empty: EmptyApply, ListInterval: time.Hour, ReconcileInterval: time.Hour, ReconcileRate: 0.001})
	waitFor(t, pool, 15*time.Second, func(s *discovery.Snapshot) bool { return count(key)(s) == 1 })
	b := nacostest.Register(t, addr, group, "qwen", "127.0.0.1", 41032, 1, nil)
	waitFor(t, pool, 5*time.Second, func(s *discovery.Snapshot) bool { return count(key)(s) == 2 })
	a.Deregister()
	b.Update(4, true)
	waitFor(t, pool, 5*time.Second, func(s *discovery.Snapshot) bool {
		l := instances(pool, key)
		return len(l) == 1 && l[0].Port == 41032 && l[0].Weight == 4
	})
}

// A new service in a watched group is routable within 2 s (p99 of 10, at
// the default list interval).
func TestRealNacosNewServiceWithin2s(t *testing.T) {
	addr := nacostest.Addr(t)
	group := testkit.UniqueGroup("ITNEW")
	nacostest.Register(t, addr, group, "first", "127.0.0.1", 41040, 1, nil)
	pool, _ := runWatcher(t, addr, Settings{Groups: []string{group}, ListInterval: 1500 * time.Millisecond,
		ReconcileInterval: time.Hour})
	waitFor(t, pool, 15*time.Second, func(s *discovery.Snapshot) bool { return count(discovery.ServiceKey(group, "first"))(s) == 1 })
	var took []time.Duration
	for i := range 10 {
		name := fmt.Sprintf("new%d", i)
		nacostest.Register(t, addr, group, name, "127.0.0.1", 41041+i, 1, nil)
		begin := time.Now()
		waitFor(t, pool, 10*time.Second, func(s *discovery.Snapshot) bool { return count(discovery.ServiceKey(group, name))(s) == 1 })
		took = append(took, time.Since(begin))
	}
	slices.Sort(took)
	t.Logf("new service routable after (sorted): %v", took)
	if p99 := took[len(took)-1]; p99 > 2*time.Second {
		t.Fatalf("p99 %v > 2s", p99)
	}
}
