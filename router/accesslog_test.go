package router

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/testkit"
)

// stuckWriter blocks every Write until released, like a stdout nobody
// reads.
type stuckWriter struct {
	release chan struct{}
	testkit.Buffer
}

func (s *stuckWriter) Write(p []byte) (int, error) {
	<-s.release
	return s.Buffer.Write(p)
}

// TestAccessLogNeverBlocks: with the output stuck, writes keep returning at
// once; what overflows the buffer is dropped and counted; what fitted is
// written once the output moves, and the rest is flushed when Run's context
// ends.
func TestAccessLogNeverBlocks(t *testing.T) {
	out := &stuckWriter{release: make(chan struct{})}
	w := newLineWriter(out, 1000) // room for 10 lines of 100 bytes
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()

	line := []byte(strings.Repeat("x", 99) + "\n")
	for range 50 {
		if n, err := w.Write(line); n != len(line) || err != nil {
			t.Fatalf("write: %d %v", n, err)
		}
	}
	// The run goroutine holds at most one batch (≤ 10 lines) in the stuck
	// Write, and the buffer at most 10 more: of 50, at least 30 dropped.
	if d := w.dropped.Load(); d < 30 || d > 50 {
		t.Fatalf("%d of 50 lines dropped with the output stuck, want 30 to 50", d)
	}
	close(out.release)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	written := strings.Count(out.String(), "\n")
	if uint64(written)+w.dropped.Load() != 50 {
		t.Fatalf("%d written + %d dropped, want 50", written, w.dropped.Load())
	}
	if _, _ = w.Write(line); w.dropped.Load() != uint64(50-written+1) {
		t.Fatal("a line written after close was not counted as dropped")
	}
}

// TestAccessLogFlushedOnShutdown: every line written before the router's
// Run ends reaches the output, and the drop counter is exported.
func TestAccessLogFlushedOnShutdown(t *testing.T) {
	var buf testkit.Buffer
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen"}}}, WithAccessLogWriter(&buf))
	g.mocks("qwen", 1, mockllm.Config{}, nil)
	for range 20 {
		if r := g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[]}`); r.StatusCode() != 200 {
			t.Fatal(r.StatusCode())
		}
	}
	g.stop()
	if n := strings.Count(buf.String(), `"api":"chat"`); n != 20 {
		t.Fatalf("%d of 20 access log lines written by shutdown", n)
	}
	var m bytes.Buffer
	g.router.WritePrometheus(&m)
	if !strings.Contains(m.String(), "modelgate_access_log_dropped_total 0") {
		t.Fatal("modelgate_access_log_dropped_total missing")
	}
}
