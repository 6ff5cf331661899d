//go:build !race

// Built without -race: nacos-sdk-go races with itself when the server goes
// away (docs/decisions/0002-nacos-restart-tests-without-race.md). `make
// test` runs it in its second, non-race pass of *Restart* tests.

package bench

import (
	"testing"
	"time"

	"github.com/modelgate/modelgate/bench/chaos"
	"github.com/modelgate/modelgate/internal/nacostest"
)

// TestChaosNacosRestart runs the `make chaos` scenario that stops and
// restarts Nacos under load, on a private Nacos.
func TestChaosNacosRestart(t *testing.T) {
	srv := nacostest.StartPrivateWith(t)
	start := time.Now()
	results, err := chaos.Run(chaos.Options{
		NacosAddr: srv.Addr(), NacosPort: srv.Port, Only: []string{"nacos-restart"},
		Duration: 5 * time.Second, Rate: 100,
		Bins: bins(t), Dir: t.TempDir(), Log: logWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 {
		t.Fatalf("%d scenarios ran, want 1", len(results))
	}
	if r := results[0]; !r.OK {
		t.Error(r.Line())
	}
	t.Logf("Nacos restart scenario in %v", time.Since(start).Round(time.Second))
}
