//go:build !race

// The restart test is built without the race detector: nacos-sdk-go v2.3.5
// has a data race of its own in its reconnect path (rpc_client.go, reconnect
// against notifyConnectionEvent) that the detector reports whenever the
// server goes away. `make test` runs this file in a second pass without
// -race; see docs/decisions/0002-nacos-restart-tests-without-race.md.

package nacos

import (
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/nacostest"
	"github.com/modelgate/modelgate/internal/testkit"
)

func TestRealNacosRestart(t *testing.T) {
	srv := nacostest.StartPrivateWith(t)
	group := testkit.UniqueGroup("ITRESTART")
	key := discovery.ServiceKey(group, "qwen")
	nacostest.Register(t, srv.Addr(), group, "qwen", "127.0.0.1", 41021, 1, nil)
	set := metrics.NewSet()
	pool, w := runWatcher(t, srv.Addr(), Settings{Groups: []string{group}}, WithMetrics(set))
	waitFor(t, pool, 10*time.Second, func(s *discovery.Snapshot) bool { return count(key)(s) == 1 })

	srv.Stop(t)
	// Nacos is gone: listings fail and the pool keeps what it had.
	synced := w.lastSync.Load()
	testkit.Eventually(t, 10*time.Second, "a failed listing", func() bool {
		return time.Since(time.Unix(0, w.lastSync.Load())) > 2*time.Second && w.lastSync.Load() == synced
	})
	if n := count(key)(pool.Snapshot()); n != 1 {
		t.Fatalf("pool lost its instances while Nacos was down: %d", n)
	}

	srv.Start(t)
	// The registering client re-registers by itself; a new one is picked up.
	nacostest.Register(t, srv.Addr(), group, "qwen", "127.0.0.1", 41022, 1, nil)
	waitFor(t, pool, 20*time.Second, func(s *discovery.Snapshot) bool { return count(key)(s) == 2 })
}
