package main

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/modelgate/modelgate/router"
)

// TestStopBeforeServing: a daemon told to stop before its listeners serve
// (a signal during start) returns promptly, and its ports are free again.
// fasthttp's Shutdown closes only the listeners Serve has registered: one
// whose goroutine had not run yet went on serving, and run waited forever.
func TestStopBeforeServing(t *testing.T) {
	pool := filepath.Join(t.TempDir(), "pool.yaml")
	write(t, pool, "instances: []\n")
	for i := range 30 {
		cfg := &Config{Listen: "127.0.0.1:0", Admin: AdminConfig{Listen: "127.0.0.1:0"}, Discovery: DiscoveryConfig{Static: pool},
			Router: router.Config{Routes: []router.Route{{Model: "chat"}}}}
		if err := cfg.normalize(); err != nil {
			t.Fatal(err)
		}
		d, err := newDaemon(cfg, "", nil, nil, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		api, admin := d.apiLn.Addr().String(), d.adminLn.Addr().String()
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // stopped before run starts anything
		done := make(chan error, 1)
		go func() { done <- d.run(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run %d: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("run %d did not return 10s after a stop that came before serving", i)
		}
		for _, addr := range []string{api, admin} {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatalf("run %d: %s still held after the stop: %v", i, addr, err)
			}
			_ = ln.Close()
		}
	}
}
