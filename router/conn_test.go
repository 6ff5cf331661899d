package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/discovery"
)

// rawServer is a model server written on bare sockets, so that a test
// decides exactly when connections close. handle serves one connection.
type rawServer struct {
	ln     net.Listener
	mu     sync.Mutex
	conns  int      // accepted
	ctypes []string // Content-Type of each request
	ended  chan time.Duration
	wg     sync.WaitGroup
}

// startRaw serves every connection with serve, which returns whether the
// server closes the connection after each reply (without saying so).
func startRaw(t *testing.T, closeAfterReply, replyNothing bool) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, ended: make(chan time.Duration, 100)}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			s.wg.Go(func() { s.serve(c, closeAfterReply, replyNothing) })
		}
	})
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *rawServer) serve(c net.Conn, closeAfterReply, replyNothing bool) {
	defer c.Close()
	br := bufio.NewReader(c)
	var lastReply time.Time
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			if !lastReply.IsZero() {
				s.ended <- time.Since(lastReply) // the client closed an idle connection
			}
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		s.mu.Lock()
		s.ctypes = append(s.ctypes, req.Header.Get("Content-Type"))
		s.mu.Unlock()
		if replyNothing {
			return
		}
		body := `{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "+
			strconv.Itoa(len(body))+"\r\n\r\n"+body)
		lastReply = time.Now()
		if closeAfterReply {
			return // as a server whose keep-alive ran out does, without Connection: close
		}
	}
}

func (s *rawServer) accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

func (g *gateway) raw(svc string, s *rawServer, meta map[string]string) *discovery.Instance {
	g.t.Helper()
	host, port, _ := net.SplitHostPort(s.ln.Addr().String())
	p, _ := strconv.Atoi(port)
	in := &discovery.Instance{Service: svc, Host: host, Port: p, Weight: 1, Healthy: true, Enabled: true, Metadata: meta}
	g.pool.Update(discovery.ServiceKey("", svc), []*discovery.Instance{in})
	g.synced()
	return in
}

func (g *gateway) failures() uint64 {
	var n uint64
	for _, st := range g.router.Balancer().Instances() {
		n += st.Failures
	}
	return n
}

const rawChat = `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`

// A pooled connection the server closed fails before any reply byte: the
// request goes again on a fresh connection in the same attempt, not counted
// against the breaker or the route's retries (0 here). The client's form
// content type (curl -d) goes upstream as JSON.
func TestClosedPooledConnectionIsRetriedOnAFreshOne(t *testing.T) {
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen", IdleTimeout: time.Minute}}})
	srv := startRaw(t, true, false)
	g.raw("qwen", srv, nil)
	const n = 6
	for i := range n {
		// Each body differs: a cached reply must not hide a failure.
		body := `{"model":"chat","messages":[{"role":"user","content":"hi ` + strconv.Itoa(i) + `"}]}`
		resp := g.do("POST", "/v1/chat/completions", body, "Content-Type", "application/x-www-form-urlencoded")
		if resp.StatusCode() != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode(), resp.Body())
		}
	}
	if f := g.failures(); f != 0 {
		t.Fatalf("%d breaker failures, want 0", f)
	}
	in := g.pool.Snapshot().Service(discovery.ServiceKey("", "qwen")).Instances[0]
	name := `modelgate_upstream_reconnects_total{service="LLM@@qwen",upstream="` + in.Addr() + `",version=""}`
	if got := g.metric(name); got < 1 || got > n-1 {
		t.Fatalf("%s = %v, want 1..%d", name, got, n-1)
	}
	if srv.accepted() < 2 {
		t.Fatalf("%d connections accepted, want fresh ones after the closed ones", srv.accepted())
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for i, ct := range srv.ctypes {
		if ct != "application/json" {
			t.Fatalf("request %d went upstream with Content-Type %q", i, ct)
		}
	}
}

// A server that closes every connection before replying fails the attempt
// after one fresh connection: the reconnect is bounded, and that failure
// counts.
func TestReconnectIsOnce(t *testing.T) {
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen"}}})
	srv := startRaw(t, false, true)
	g.raw("qwen", srv, nil)
	resp := g.do("POST", "/v1/chat/completions", rawChat)
	if resp.StatusCode() != 502 {
		t.Fatalf("status %d %s, want 502", resp.StatusCode(), resp.Body())
	}
	if got := srv.accepted(); got != 2 {
		t.Fatalf("%d connections for one attempt, want 2 (the first and one fresh one)", got)
	}
	if f := g.failures(); f != 1 {
		t.Fatalf("%d breaker failures, want 1", f)
	}
}

// Idle connections are closed by modelgate after the route's idle_timeout,
// or the instance's metadata idle_timeout when it sets one.
func TestIdleConnectionsClosedBeforeServerKeepAlive(t *testing.T) {
	for _, tc := range []struct {
		name  string
		route time.Duration
		meta  map[string]string
		want  time.Duration
	}{
		{"default", 0, nil, defaultIdleTimeout},
		{"route", 300 * time.Millisecond, nil, 300 * time.Millisecond},
		{"instance", time.Minute, map[string]string{discovery.MetaIdleTimeout: "200ms"}, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen", IdleTimeout: tc.route}}})
			srv := startRaw(t, false, false)
			g.raw("qwen", srv, tc.meta)
			if resp := g.do("POST", "/v1/chat/completions", rawChat); resp.StatusCode() != 200 {
				t.Fatalf("status %d", resp.StatusCode())
			}
			select {
			case idle := <-srv.ended:
				if idle < tc.want-50*time.Millisecond || idle > tc.want+3*time.Second {
					t.Fatalf("idle connection closed after %s, want %s", idle, tc.want)
				}
			case <-time.After(tc.want + 10*time.Second):
				t.Fatalf("idle connection not closed %s after its idle timeout %s", 10*time.Second, tc.want)
			}
		})
	}
}

func TestIdleTimeoutMetadataAndConfig(t *testing.T) {
	in := &discovery.Instance{Service: "s", Host: "h", Port: 1, Metadata: map[string]string{discovery.MetaIdleTimeout: "soon"}}
	if errs := in.Parse(); len(errs) != 1 || in.IdleTimeout != 0 {
		t.Fatalf("bad idle_timeout: errs %v, value %s", errs, in.IdleTimeout)
	}
	cfg := Config{Routes: []Route{{Model: "chat", IdleTimeout: -time.Second}}}
	if err := cfg.Validate(); err == nil {
		t.Fatal("a negative idle_timeout was accepted")
	}
}

// A server that puts usage on its last chunk with a choice (LiteLLM does)
// still has it counted, and the field is removed for a client that did not
// ask for usage.
func TestUsageOnAChunkWithAChoice(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, `data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi there"}}]}`+"\n\n")
		_, _ = io.WriteString(w, `data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{}}],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}`+"\n\n")
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen"}}})
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	p, _ := strconv.Atoi(port)
	g.pool.Update(discovery.ServiceKey("", "qwen"), []*discovery.Instance{{Service: "qwen", Host: host, Port: p, Weight: 1, Healthy: true, Enabled: true}})
	g.synced()
	resp := g.do("POST", "/v1/chat/completions", `{"model":"chat","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	body := string(resp.Body())
	if resp.StatusCode() != 200 || strings.Contains(body, "usage") || !strings.Contains(body, `"delta":{}`) || !strings.Contains(body, "[DONE]") {
		t.Fatalf("%d %s", resp.StatusCode(), body)
	}
	if in := g.metric(`modelgate_tokens_total{model="chat",type="input",source="usage"}`); in != 7 {
		t.Fatalf("input tokens %v, want 7", in)
	}
	resp = g.do("POST", "/v1/chat/completions", `{"model":"chat","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"y"}]}`)
	if !strings.Contains(string(resp.Body()), `"usage"`) {
		t.Fatalf("usage removed for a client that asked for it: %s", resp.Body())
	}
}
