package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/modelgate/modelgate/discovery/static"
	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/router"
)

// demoInstances are the embedded default: two v1 instances and a v2 canary
// with a third of their weight.
var demoInstances = []struct {
	name    string
	version string
	weight  float64
	gpu     string
}{
	{"demo-v1-a", "v1", 3, "a100"},
	{"demo-v1-b", "v1", 3, "a100"},
	{"demo-v2-canary", "v2", 1, "h100"},
}

// runDemo serves the embedded default until ctx is done: mock model servers
// on loopback, a static pool over them and the router.
func runDemo(ctx context.Context, listen, admin string, out io.Writer) error {
	var entries []static.Entry
	for _, di := range demoInstances {
		srv, err := mockllm.Start("127.0.0.1:0", mockllm.Config{
			Name: di.name, Latency: 20 * time.Millisecond, StreamChunks: 16, ChunkGap: 30 * time.Millisecond,
		})
		if err != nil {
			return fmt.Errorf("demo: start mock model: %w", err)
		}
		defer srv.Close()
		w := di.weight
		entries = append(entries, static.Entry{Service: "demo", Addr: srv.Addr(), Weight: &w,
			Metadata: map[string]string{"version": di.version, "gpu": di.gpu}})
	}
	src, err := static.NewList(entries)
	if err != nil {
		return err
	}
	cfg := &Config{
		Listen: listen, Admin: AdminConfig{Listen: admin},
		Router: router.Config{Routes: []router.Route{
			{Model: "demo", Aliases: []string{"gpt-4o-mini"}, Service: "demo", Retries: 1},
		}},
	}
	if err := cfg.normalize(); err != nil {
		return err
	}
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	d, err := newDaemon(cfg, "", []byte("(demo)"), src, log)
	if err != nil {
		return err
	}
	// The banner invites a request at once: print it when the mock instances
	// are in the pool and the balancer has built from them, not before.
	bctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	wg.Go(func() {
		select {
		case <-d.pool.Synced():
		case <-bctx.Done():
			return
		}
		if bal := d.router.Balancer(); bal != nil && bal.WaitVersion(bctx, d.pool.Snapshot().Version) != nil {
			return
		}
		printDemoBanner(out, len(entries), d.apiLn.Addr().String(), d.adminLn.Addr().String())
	})
	return d.run(ctx)
}

func printDemoBanner(out io.Writer, instances int, api, admin string) {
	fmt.Fprintf(out, `modelgate demo: %d mock model instances (2 x v1, 1 x v2 canary), route "demo"
  API   http://%s   admin http://%s (/metrics, /readyz)
Try:
  curl localhost:%s/v1/chat/completions -d '{"model":"demo","messages":[{"role":"user","content":"hi"}]}'
  curl -N localhost:%s/v1/chat/completions -d '{"model":"demo","stream":true,"messages":[{"role":"user","content":"hi"}]}'
Ctrl-C stops.
`, instances, api, admin, portOf(api), portOf(api))
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
