//go:build !race

// Built without -race: nacos-sdk-go races with itself when the server goes
// away (docs/decisions/0002-nacos-restart-tests-without-race.md).

package main

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/nacostest"
	"github.com/modelgate/modelgate/internal/testkit"
)

// TestNacosRestartUnderTraffic stops Nacos while requests flow: they keep
// being served from the last known pool; when Nacos is back, a new
// registration is picked up.
func TestNacosRestartUnderTraffic(t *testing.T) {
	srv := nacostest.StartPrivateWith(t)
	group := testkit.UniqueGroup("E2ERESTART")
	key := discovery.ServiceKey(group, "qwen")
	m1 := startMock(t, "m1", mockllm.Config{})
	nacostest.Register(t, srv.Addr(), group, "qwen", "127.0.0.1", port(m1.Addr()), 1, nil)
	d := startDaemon(t, nacosConfig(srv.Addr(), group, "qwen", "keep"))
	d.waitPool(t, key, 10*time.Second, func(l []*discovery.Instance) bool { return len(l) == 1 })

	c := d.client()
	ctx, stop := context.WithCancel(context.Background())
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	wg.Go(func() {
		pace := time.NewTicker(5 * time.Millisecond) // ~200 requests/s: leave the CPUs to Nacos
		defer pace.Stop()
		for ctx.Err() == nil {
			<-pace.C
			if _, err := chat(ctx, c, "chat"); err != nil && ctx.Err() == nil {
				failed.Add(1)
				t.Errorf("request failed while Nacos was down: %v", err)
			} else if err == nil {
				ok.Add(1)
			}
		}
	})

	srv.Stop(t)
	before := ok.Load()
	srv.Start(t) // takes ~10 s: traffic flows all along
	if served := ok.Load() - before; served < 50 {
		t.Errorf("only %d requests served while Nacos was down", served)
	}

	m2 := startMock(t, "m2", mockllm.Config{})
	nacostest.Register(t, srv.Addr(), group, "qwen", "127.0.0.1", port(m2.Addr()), 1, nil)
	d.waitPool(t, key, 20*time.Second, func(l []*discovery.Instance) bool { return len(l) == 2 })
	for i := 0; m2.Requests() == 0; i++ {
		if i == 500 {
			t.Fatal("the new instance got none of 500 requests")
		}
		if _, err := chat(ctx, c, "chat"); err != nil {
			t.Fatalf("chat: %v", err)
		}
	}
	stop()
	wg.Wait()
	t.Logf("served %d requests, %d failed", ok.Load(), failed.Load())
}

// TestNacosDownRestartServesSnapshot restarts the daemon while Nacos is
// down: it serves the known instances from its pool snapshot, marked
// stale, then follows Nacos when it returns.
func TestNacosDownRestartServesSnapshot(t *testing.T) {
	srv := nacostest.StartPrivateWith(t)
	group := testkit.UniqueGroup("E2ESNAP")
	key := discovery.ServiceKey(group, "qwen")
	m1 := startMock(t, "m1", mockllm.Config{})
	nacostest.Register(t, srv.Addr(), group, "qwen", "127.0.0.1", port(m1.Addr()), 1, nil)
	cacheDir := t.TempDir()
	config := func() *Config {
		cfg := nacosConfig(srv.Addr(), group, "qwen", "keep")
		cfg.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0"
		cfg.Discovery.Nacos.CacheDir = cacheDir
		if err := cfg.normalize(); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := config()
	d, stopDaemon := runDaemon(t, cfg, "", nil)
	d.waitPool(t, key, 20*time.Second, func(l []*discovery.Instance) bool { return len(l) == 1 })
	testkit.Eventually(t, 10*time.Second, "pool snapshot written", func() bool {
		got, _, err := discovery.ReadSnapshotFile(cfg.Discovery.Nacos.Snapshot)
		return err == nil && len(got[key]) == 1
	})
	if err := stopDaemon(); err != nil {
		t.Fatal(err)
	}

	srv.Stop(t)
	d, stopDaemon = runDaemon(t, config(), "", nil) // synced from the snapshot
	defer func() {
		if err := stopDaemon(); err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()
	if !d.pool.Stale() || metricValue(t, d.admin, "modelgate_pool_stale") != 1 {
		t.Fatal("pool from the snapshot not marked stale")
	}
	d.waitPool(t, key, 5*time.Second, func(l []*discovery.Instance) bool { return len(l) == 1 })
	c := d.client()
	for i := range 100 {
		if _, err := chat(context.Background(), c, "chat"); err != nil {
			t.Fatalf("request %d from the snapshot pool: %v", i, err)
		}
	}

	srv.Start(t)
	m2 := startMock(t, "m2", mockllm.Config{})
	nacostest.Register(t, srv.Addr(), group, "qwen", "127.0.0.1", port(m2.Addr()), 1, nil)
	d.waitPool(t, key, 30*time.Second, func(l []*discovery.Instance) bool { return len(l) == 2 })
	testkit.Eventually(t, 10*time.Second, "stale cleared", func() bool { return !d.pool.Stale() })
	if metricValue(t, d.admin, "modelgate_pool_stale") != 0 {
		t.Fatal("modelgate_pool_stale still 1")
	}
}
