package health_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/health"
	"github.com/modelgate/modelgate/internal/leaktest"
	"github.com/modelgate/modelgate/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// server answers GET /health with status on a loopback socket.
func server(t *testing.T, status int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			w.WriteHeader(404)
			return
		}
		w.WriteHeader(status)
	})}
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(ln) })
	t.Cleanup(func() { _ = srv.Close(); wg.Wait() })
	return ln.Addr().String()
}

// frozen is a listening socket nobody accepts from: the kernel completes
// connections, nothing answers — a stopped process.
func frozen(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln.Addr().String()
}

func inst(addr string, meta map[string]string) *discovery.Instance {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return &discovery.Instance{Service: "chat", Host: host, Port: p, Weight: 1, Healthy: true, Enabled: true, Metadata: meta}
}

func TestProber(t *testing.T) {
	up, sick, stopped := server(t, 200), server(t, 503), frozen(t)
	unprobed := frozen(t)
	pool := discovery.NewPool()
	pool.Update(discovery.ServiceKey("", "chat"), []*discovery.Instance{
		inst(up, map[string]string{"engine": "vllm"}),
		inst(sick, map[string]string{"health_path": "/health"}),
		inst(stopped, map[string]string{"engine": "llamacpp"}),
		inst(unprobed, map[string]string{"engine": "in-house"}),
	})
	b := balancer.New(pool, []balancer.Route{{Name: "chat", Service: discovery.ServiceKey("", "chat")}})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { _ = b.Run(ctx) })
	if err := b.WaitVersion(ctx, pool.Snapshot().Version); err != nil {
		t.Fatal(err)
	}
	const interval, timeout = 100 * time.Millisecond, 200 * time.Millisecond
	p := health.New(pool, b, health.Settings{Interval: interval, Timeout: timeout})
	began := time.Now()
	wg.Go(func() { _ = p.Run(ctx) })
	want := map[string]string{up: "up", sick: "down", stopped: "down", unprobed: ""}
	var got map[string]string
	testkit.Await(10*time.Second, 20*time.Millisecond, func() bool {
		got = map[string]string{}
		for _, st := range b.Instances() {
			got[st.Addr] = st.Health
		}
		return got[up] == want[up] && got[sick] == want[sick] && got[stopped] == want[stopped]
	})
	for addr, w := range want {
		if got[addr] != w {
			t.Errorf("%s: health %q, want %q", addr, got[addr], w)
		}
	}
	t.Logf("frozen instance out after %v (3 probes of %v, %v apart)", time.Since(began), timeout, interval)
	for range 50 {
		pk, err := b.Pick(&balancer.Request{Route: "chat"})
		if err != nil {
			t.Fatal(err)
		}
		if a := pk.Instance.Addr(); a == sick || a == stopped {
			t.Fatalf("picked %s, which fails its health checks", a)
		}
		pk.Done(balancer.Result{Status: 200})
	}
	if probes, failures := p.Counts(); probes == 0 || failures == 0 {
		t.Errorf("counts: %d probes, %d failures", probes, failures)
	}
}

func TestPath(t *testing.T) {
	tests := []struct {
		meta map[string]string
		path string
		ok   bool
	}{
		{map[string]string{"engine": "vllm"}, "/health", true},
		{map[string]string{"engine": "SGLang"}, "/health", true},
		{map[string]string{"engine": "llamacpp", "health_path": "/ready"}, "/ready", true},
		{map[string]string{"engine": "vllm", "health_path": "none"}, "", false},
		{map[string]string{"health_path": "no-slash"}, "", false},
		{map[string]string{"engine": "tgi"}, "", false},
		{nil, "", false},
	}
	for _, tt := range tests {
		p, ok := health.Path(&discovery.Instance{Metadata: tt.meta})
		if p != tt.path || ok != tt.ok {
			t.Errorf("%v: %q %v, want %q %v", tt.meta, p, ok, tt.path, tt.ok)
		}
	}
}
