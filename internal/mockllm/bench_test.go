package mockllm

import (
	"bufio"
	"errors"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// serveInmemory serves a new mock over an in-memory listener until cleanup.
func serveInmemory(tb testing.TB, cfg Config) (*Server, *fasthttputil.InmemoryListener) {
	tb.Helper()
	s := New(cfg)
	ln := fasthttputil.NewInmemoryListener()
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
		if err := <-errc; err != nil && !errors.Is(err, ErrClosed) {
			tb.Errorf("Serve: %v", err)
		}
	})
	return s, ln
}

// roundTrips sends req over one in-memory connection for every pb.Next and
// reads each whole response, streamed or not; it needs no client goroutines.
func roundTrips(tb testing.TB, ln *fasthttputil.InmemoryListener, path, body string, next func() bool) {
	c, err := ln.Dial()
	if err != nil {
		tb.Error(err)
		return
	}
	defer c.Close()
	br, bw := bufio.NewReader(c), bufio.NewWriter(c)
	var req fasthttp.Request
	var resp fasthttp.Response
	req.SetRequestURI("http://mock" + path)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.SetBodyString(body)
	for next() {
		if err := req.Write(bw); err != nil {
			tb.Error(err)
			return
		}
		if err := bw.Flush(); err != nil {
			tb.Error(err)
			return
		}
		if err := resp.Read(br); err != nil {
			tb.Error(err)
			return
		}
		if resp.StatusCode() != fasthttp.StatusOK {
			tb.Errorf("status %d: %s", resp.StatusCode(), resp.Body())
			return
		}
	}
}

func TestServeInmemory(t *testing.T) {
	s, ln := serveInmemory(t, Config{})
	n := 0
	roundTrips(t, ln, "/v1/chat/completions", `{"model":"m","stream":true}`, func() bool { n++; return n <= 3 })
	if s.Requests() != 3 {
		t.Errorf("Requests = %d, want 3", s.Requests())
	}
}

func BenchmarkChat(b *testing.B) {
	tests := []struct {
		name, path, body string
	}{
		{"chat", "/v1/chat/completions", `{"model":"llama","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say something short about the weather today."}]}`},
		{"chat-stream", "/v1/chat/completions", `{"model":"llama","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say something."}]}`},
		{"completions", "/v1/completions", `{"model":"llama","prompt":"Say something."}`},
		{"embeddings", "/v1/embeddings", `{"model":"e5","input":["one","two"]}`},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			_, ln := serveInmemory(b, Config{StreamChunks: 16})
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				roundTrips(b, ln, tt.path, tt.body, pb.Next)
			})
		})
	}
}
