package router

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/leaktest"
	"github.com/modelgate/modelgate/internal/mockllm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// gateway is a Router served on a real loopback socket over a pool the
// test fills with mock model servers.
type gateway struct {
	t      *testing.T
	pool   *discovery.Pool
	router *Router
	set    *metrics.Set
	addr   string
	client *fasthttp.Client
	stop   func() // shuts the server down and ends Run; also at cleanup
}

func newGateway(t *testing.T, cfg Config, opts ...Option) *gateway {
	t.Helper()
	g := &gateway{t: t, pool: discovery.NewPool(), set: metrics.NewSet()}
	g.pool.MarkSynced()
	rt, err := New(g.pool, cfg, append([]Option{WithMetrics(g.set)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	g.router = rt
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = ln.Addr().String()
	srv := &fasthttp.Server{Handler: rt.Handler, ErrorHandler: rt.ErrorHandler, MaxRequestBodySize: rt.MaxBodySize(),
		ReadBufferSize: rt.MaxHeaderSize(), Logger: ServerLogger(zerolog.Nop())}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(ln) })
	wg.Go(func() { _ = rt.Run(ctx) })
	g.client = &fasthttp.Client{ReadTimeout: 10 * time.Second}
	g.stop = sync.OnceFunc(func() {
		g.client.CloseIdleConnections()
		// Tests that read streams use net/http's default client.
		http.DefaultClient.CloseIdleConnections()
		_ = srv.Shutdown()
		cancel()
		wg.Wait()
	})
	t.Cleanup(g.stop)
	return g
}

// mocks starts n mock servers named prefix-i and puts them in service svc.
func (g *gateway) mocks(svc string, n int, cfg mockllm.Config, meta map[string]string) []*mockllm.Server {
	g.t.Helper()
	var out []*mockllm.Server
	var list []*discovery.Instance
	for i := range n {
		c := cfg
		c.Name = svc + "-" + strconv.Itoa(i)
		s, err := mockllm.Start("127.0.0.1:0", c)
		if err != nil {
			g.t.Fatal(err)
		}
		g.t.Cleanup(func() { _ = s.Close() })
		out = append(out, s)
		host, port, _ := net.SplitHostPort(s.Addr())
		p, _ := strconv.Atoi(port)
		list = append(list, &discovery.Instance{Service: svc, Host: host, Port: p, Weight: 1, Healthy: true, Enabled: true, Metadata: meta})
	}
	g.pool.Update(discovery.ServiceKey("", svc), list)
	g.synced()
	return out
}

// synced waits until the balancer has built from the current pool.
func (g *gateway) synced() {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.router.Balancer().WaitVersion(ctx, g.pool.Snapshot().Version); err != nil {
		g.t.Fatal("balancer did not catch up with the pool")
	}
}

// do sends one request and returns the response (released by the test's end).
func (g *gateway) do(method, path, body string, headers ...string) *fasthttp.Response {
	g.t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetMethod(method)
	req.SetRequestURI("http://" + g.addr + path)
	req.Header.SetContentType("application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	req.SetBodyString(body)
	resp := &fasthttp.Response{}
	if err := g.client.Do(req, resp); err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// metric returns the value of a metric line in the Prometheus output, or -1.
func (g *gateway) metric(name string) float64 {
	var b bytes.Buffer
	g.router.WritePrometheus(&b)
	for line := range strings.Lines(b.String()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}
