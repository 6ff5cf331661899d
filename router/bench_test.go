package router

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/modelgate/modelgate/discovery"
)

const benchReply = `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"lorem ipsum dolor sit amet"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":5,"total_tokens":10}}`

// benchUpstream is an allocation-free model server over an in-memory
// listener, so that allocations counted in a benchmark are the router's.
// With chunks > 0 it streams that many events.
func benchUpstream(b testing.TB, chunks int) *fasthttputil.InmemoryListener {
	ln := fasthttputil.NewInmemoryListener()
	event := []byte(`data: {"choices":[{"index":0,"delta":{"content":"tok "}}]}` + "\n\n")
	srv := &fasthttp.Server{Logger: quiet{}, Handler: func(ctx *fasthttp.RequestCtx) {
		if chunks == 0 {
			ctx.SetContentType("application/json")
			ctx.SetBodyString(benchReply)
			return
		}
		ctx.SetContentType("text/event-stream")
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			for range chunks {
				_, _ = w.Write(event)
				_ = w.Flush()
			}
			_, _ = w.WriteString("data: [DONE]\n\n")
		})
	}}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Shutdown() })
	return ln
}

// benchGateway serves a router over an in-memory listener in front of up,
// and returns a client for it.
func benchGateway(b testing.TB, up *fasthttputil.InmemoryListener, opts ...Option) *fasthttp.HostClient {
	pool := discovery.NewPool()
	pool.Update("LLM@@m", []*discovery.Instance{{Service: "m", Host: "10.0.0.1", Port: 8000, Weight: 1, Healthy: true, Enabled: true}})
	opts = append([]Option{WithMetrics(metrics.NewSet()), WithDialer(func(string) (net.Conn, error) { return up.Dial() })}, opts...)
	rt, err := New(pool, Config{Routes: []Route{{Model: "m"}}}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = rt.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: rt.Handler, Logger: quiet{}}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Shutdown() })
	return &fasthttp.HostClient{Addr: "gw", Dial: func(string) (net.Conn, error) { return ln.Dial() }, MaxConns: 1024}
}

// BenchmarkProxyChat reports the allocations of one proxied non-streaming
// chat request, whole process (target ≤ 15).
func BenchmarkProxyChat(b *testing.B) { benchProxyChat(b) }

// BenchmarkProxyChatDaemon is BenchmarkProxyChat with the daemon's
// options: the access log written (to io.Discard) through its buffered
// writer.
func BenchmarkProxyChatDaemon(b *testing.B) { benchProxyChat(b, WithAccessLogWriter(io.Discard)) }

func benchProxyChat(b *testing.B, opts ...Option) {
	client := benchGateway(b, benchUpstream(b, 0), opts...)
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"hello there"}]}`)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://gw/v1/chat/completions")
		req.Header.SetMethod("POST")
		req.Header.SetUserAgent("bench/1.0")
		req.SetBody(body)
		for pb.Next() {
			if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Fatalf("%v %d %s", err, resp.StatusCode(), resp.Body())
			}
		}
	})
}

// BenchmarkDirectChat is the same request straight to the upstream: the
// difference to BenchmarkProxyChat is what the router adds.
func BenchmarkDirectChat(b *testing.B) {
	up := benchUpstream(b, 0)
	client := &fasthttp.HostClient{Addr: "up", Dial: func(string) (net.Conn, error) { return up.Dial() }, MaxConns: 1024}
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"hello there"}]}`)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://up/v1/chat/completions")
		req.Header.SetMethod("POST")
		req.SetBody(body)
		for pb.Next() {
			if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStreamTTFT reports the time from sending a streaming request to
// reading its first event, through the router and directly; the difference
// is the router's added time to first token.
func BenchmarkStreamTTFT(b *testing.B) {
	for _, leg := range []string{"direct", "via"} {
		b.Run(leg, func(b *testing.B) {
			up := benchUpstream(b, 16)
			var client *fasthttp.HostClient
			if leg == "via" {
				client = benchGateway(b, up)
			} else {
				client = &fasthttp.HostClient{Addr: "up", Dial: func(string) (net.Conn, error) { return up.Dial() }}
			}
			client.StreamResponseBody = true
			body := []byte(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.SetRequestURI("http://x/v1/chat/completions")
			req.Header.SetMethod("POST")
			req.SetBody(body)
			var ttft time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if err := client.Do(req, resp); err != nil {
					b.Fatal(err)
				}
				br := bufio.NewReader(resp.BodyStream())
				if _, err := br.ReadString('\n'); err != nil {
					b.Fatal(err)
				}
				ttft += time.Since(start)
				_ = resp.CloseBodyStream()
				resp.Reset()
			}
			b.ReportMetric(float64(ttft.Microseconds())/float64(b.N), "µs-ttft/op")
		})
	}
}

// quiet drops fasthttp's log lines about connections the benchmark closes.
type quiet struct{}

func (quiet) Printf(string, ...any) {}
