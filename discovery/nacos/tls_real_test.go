//go:build !race

// Built without -race, as the restart test: the SDK clients with a wrong
// CA, or without TLS, keep reconnecting, and the SDK races with itself on
// reconnect (docs/decisions/0002-nacos-restart-tests-without-race.md).
// `make test` runs it in its second, non-race pass.

package nacos

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/vo"
	"github.com/rs/zerolog"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/nacostest"
	"github.com/modelgate/modelgate/internal/testkit"
)

// A real Nacos serving TLS only, on its HTTP API and its SDK gRPC port:
// with the CA file the watcher lists, subscribes (gRPC over TLS) and reads
// (https), and follows a change that only a push can bring; with a CA
// that did not sign the server's certificate it stays unsynced and logs
// why; a plaintext SDK client cannot register at all.
func TestRealNacosOverTLS(t *testing.T) {
	files := nacostest.NewTLSFiles(t)
	srv := nacostest.StartPrivateTLS(t, files)
	group := testkit.UniqueGroup("ITTLS")
	key := discovery.ServiceKey(group, "qwen")
	tlsCfg := &TLSConfig{CAFile: files.CA}

	// The model servers register over gRPC with TLS, as the SDK does. The
	// registration waits for the connection: a RegisterInstance sent
	// before it races with the SDK's own re-registration on connect.
	register := func(cfg ClientConfig, port uint64, within time.Duration) error {
		dir := t.TempDir()
		cfg.CacheDir, cfg.LogDir, cfg.TimeoutMs = filepath.Join(dir, "c"), filepath.Join(dir, "l"), 3000
		c, err := Dial(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		for deadline := time.Now().Add(within); !c.Naming().ServerHealthy(); time.Sleep(100 * time.Millisecond) { // polling the SDK's state
			if time.Now().After(deadline) {
				return fmt.Errorf("no gRPC connection within %v", within)
			}
		}
		ok, err := c.Naming().RegisterInstance(vo.RegisterInstanceParam{Ip: "127.0.0.1", Port: port, Weight: 1,
			Enable: true, Healthy: true, Ephemeral: true, ServiceName: "qwen", GroupName: group})
		if err == nil && !ok {
			err = errors.New("register: not ok")
		}
		return err
	}
	if err := register(ClientConfig{Servers: []string{srv.Addr()}, TLS: tlsCfg}, 41061, 20*time.Second); err != nil {
		t.Fatalf("register over TLS: %v", err)
	}

	pool, _ := runWatcherOn(t, ClientConfig{Servers: []string{srv.Addr()}, TLS: tlsCfg},
		Settings{Groups: []string{group}, Empty: EmptyApply, ListInterval: time.Hour, ReconcileInterval: time.Hour, ReconcileRate: 0.001})
	waitFor(t, pool, 20*time.Second, func(s *discovery.Snapshot) bool { return count(key)(s) == 1 })
	// No listing and no backstop for an hour: only a push over the TLS
	// gRPC connection can bring the second instance.
	if err := register(ClientConfig{Servers: []string{srv.Addr()}, TLS: tlsCfg}, 41062, 20*time.Second); err != nil {
		t.Fatalf("register over TLS: %v", err)
	}
	waitFor(t, pool, 10*time.Second, func(s *discovery.Snapshot) bool { return count(key)(s) == 2 })

	// A CA that did not sign the server's certificate: no pool, a clear log line.
	var logs testkit.Buffer
	log := zerolog.New(&logs)
	wrong, _ := runWatcherOn(t, ClientConfig{Servers: []string{srv.Addr()}, TLS: &TLSConfig{CAFile: files.OtherCA}},
		Settings{Groups: []string{group}, ListInterval: 200 * time.Millisecond}, WithLogger(log))
	testkit.Eventually(t, 10*time.Second, "the refused certificate logged", func() bool {
		return strings.Contains(logs.String(), "certificate signed by unknown authority")
	})
	if isSynced(wrong) || len(wrong.Snapshot().Services()) != 0 {
		t.Fatalf("pool synced with a CA that did not sign the server's certificate")
	}
	t.Logf("with the wrong CA: %.300s", logs.String())

	// The SDK's gRPC with the wrong CA, and without TLS: registering fails.
	err := register(ClientConfig{Servers: []string{srv.Addr()}, TLS: &TLSConfig{CAFile: files.OtherCA}}, 41063, 5*time.Second)
	if err == nil {
		t.Fatal("registered over gRPC with a CA that did not sign the server's certificate")
	}
	t.Logf("SDK register with the wrong CA: %v", err)
	if err := register(ClientConfig{Servers: []string{srv.Addr()}}, 41064, 5*time.Second); err == nil {
		t.Fatal("registered over plaintext gRPC on a TLS-only port")
	}
}
