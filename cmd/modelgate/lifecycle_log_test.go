package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/modelgate/modelgate/internal/testkit"
)

// TestLifecycleLogLines: the daemon logs its start, the drain and the stop,
// each a JSON line on its logger, in that order.
func TestLifecycleLogLines(t *testing.T) {
	dir := t.TempDir()
	pool := filepath.Join(dir, "pool.yaml")
	write(t, pool, "instances: []\n")
	path := filepath.Join(dir, "modelgate.yaml")
	write(t, path, "discovery: {static: "+pool+"}\nlisten: 127.0.0.1:0\nadmin: 127.0.0.1:0\nroutes: [{model: chat, service: qwen}]\n")
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	var out testkit.Buffer
	d, err := newDaemon(cfg, path, nil, nil, zerolog.New(&out))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.run(ctx) }()
	out.WaitFor(t, 10*time.Second, `"message":"modelgate serving"`)
	// Both servers answer before the stop: fasthttp's Shutdown does not stop
	// a Serve that has not started yet.
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	for _, ln := range []string{d.apiLn.Addr().String(), d.adminLn.Addr().String()} {
		var err error
		if !testkit.Await(10*time.Second, 20*time.Millisecond, func() bool {
			var resp *http.Response
			if resp, err = hc.Get("http://" + ln + "/healthz"); err == nil {
				_ = resp.Body.Close()
			}
			return err == nil
		}) {
			t.Fatalf("%s does not answer: %v", ln, err)
		}
	}
	hc.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("daemon did not stop")
	}
	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var l struct{ Level, Message string }
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		if strings.HasPrefix(l.Message, "modelgate ") || strings.HasPrefix(l.Message, "draining") {
			msgs = append(msgs, l.Level+" "+l.Message)
		}
	}
	want := []string{"info modelgate serving", "info draining: listeners closed, in-flight requests and streams may finish", "info modelgate stopped"}
	if strings.Join(msgs, "|") != strings.Join(want, "|") {
		t.Fatalf("lifecycle lines %q, want %q\n%s", msgs, want, out.String())
	}
}
