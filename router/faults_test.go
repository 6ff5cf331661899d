package router

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/testkit"
)

// faultServer is a raw HTTP/1.1 server on a loopback socket: net/http
// parses each request, then fault answers it byte by byte, as a broken
// instance would. Faults that hang wait on done, closed at cleanup.
type faultServer struct {
	ln       net.Listener
	requests atomic.Int32
	headers  chan http.Header // the headers of each request, if anyone listens
	done     chan struct{}
}

type fault func(w *bufio.Writer, req *http.Request, done <-chan struct{})

// startReplies answers every request with reply as JSON, or with events as
// an SSE stream when the request's X-Test header says "stream".
func startReplies(t *testing.T, reply, events string) *faultServer {
	t.Helper()
	return startFault(t, func(w *bufio.Writer, req *http.Request, _ <-chan struct{}) {
		body, ct := reply, "application/json"
		if strings.Contains(req.Header.Get("X-Test"), "stream") {
			body, ct = events, "text/event-stream"
		}
		writeHead(w, 200, "Content-Type: "+ct+"\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n")
		_, _ = w.WriteString(body)
	})
}

func startFault(t *testing.T, f fault) *faultServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &faultServer{ln: ln, headers: make(chan http.Header, 64), done: make(chan struct{})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				br, bw := bufio.NewReader(c), bufio.NewWriter(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					s.requests.Add(1)
					select {
					case s.headers <- req.Header:
					default:
					}
					f(bw, req, s.done)
					if bw.Flush() != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		close(s.done)
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *faultServer) Addr() string { return s.ln.Addr().String() }

// serve puts instances at addrs in service svc.
func (g *gateway) serve(svc string, addrs ...string) {
	g.t.Helper()
	var list []*discovery.Instance
	for _, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		p, _ := strconv.Atoi(port)
		list = append(list, &discovery.Instance{Service: svc, Host: host, Port: p, Weight: 1, Healthy: true, Enabled: true})
	}
	g.pool.Update(discovery.ServiceKey("", svc), list)
	g.synced()
}

func writeHead(w *bufio.Writer, status int, header string) {
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\n%s\r\n", status, http.StatusText(status), header)
}

func flushed(w *bufio.Writer, s string) { _, _ = w.WriteString(s); _ = w.Flush() }

var (
	silent fault = func(_ *bufio.Writer, _ *http.Request, done <-chan struct{}) { <-done }

	headersThenStall fault = func(w *bufio.Writer, _ *http.Request, done <-chan struct{}) {
		writeHead(w, 200, "Content-Type: application/json\r\nContent-Length: 1000\r\n")
		flushed(w, `{"id":"x","choices":[`)
		<-done
	}

	streamHeadersThenSilence fault = func(w *bufio.Writer, _ *http.Request, done <-chan struct{}) {
		writeHead(w, 200, "Content-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n")
		_ = w.Flush()
		<-done
	}

	bodyCutShort fault = func(w *bufio.Writer, _ *http.Request, _ <-chan struct{}) {
		writeHead(w, 200, "Content-Type: application/json\r\nContent-Length: 1000\r\nConnection: close\r\n")
		flushed(w, `{"id":"x"`)
		// The handler returns and the connection closes, 991 bytes short.
	}
)

// TestUpstreamFaults sends requests to a route of one broken instance and
// one sound one until the broken one has been tried: each request still
// gets the sound instance's answer, after first_byte_timeout at most, not
// after the route's timeout.
func TestUpstreamFaults(t *testing.T) {
	const firstByte = 300 * time.Millisecond
	tests := []struct {
		name   string
		fault  fault
		stream bool
	}{
		{"silent instance", silent, false},
		{"silent instance, stream", silent, true},
		{"headers then stall", headersThenStall, false},
		{"stream headers then no event", streamHeadersThenSilence, true},
		{"body cut short", bodyCutShort, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen", Retries: 1,
				FirstByteTimeout: firstByte, Timeout: 30 * time.Second}}})
			bad := startFault(t, tt.fault)
			good, err := mockllm.Start("127.0.0.1:0", mockllm.Config{Name: "good"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = good.Close() })
			g.serve("qwen", bad.Addr(), good.Addr())
			body := `{"model":"chat","messages":[{"role":"user","content":"hi"}],"stream":` + strconv.FormatBool(tt.stream) + `}`
			var slowest time.Duration
			for i := 0; i < 20 && bad.requests.Load() == 0; i++ {
				began := time.Now()
				if tt.stream {
					events := streamChat(t, g.addr, body)
					if last := events[len(events)-1].data; last != "[DONE]" {
						t.Fatalf("stream ended with %q", last)
					}
				} else {
					resp := g.do("POST", "/v1/chat/completions", body)
					if resp.StatusCode() != 200 || string(resp.Header.Peek("X-Mock-Instance")) != "good" {
						t.Fatalf("status %d from %q: %s", resp.StatusCode(), resp.Header.Peek("X-Mock-Instance"), resp.Body())
					}
				}
				slowest = max(slowest, time.Since(began))
			}
			if bad.requests.Load() == 0 {
				t.Fatal("the broken instance was never tried")
			}
			if slowest > 10*firstByte {
				t.Fatalf("slowest request took %v: first_byte_timeout (%v) did not bound it", slowest, firstByte)
			}
			t.Logf("slowest request %v", slowest)
		})
	}
}

// TestStreamStallAfterContent: an instance that goes silent in the middle
// of a stream it started ends the client's stream with an SSE error event
// after first_byte_timeout, not after the route's timeout.
func TestStreamStallAfterContent(t *testing.T) {
	const firstByte = 300 * time.Millisecond
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen", Retries: 1,
		FirstByteTimeout: firstByte, Timeout: 30 * time.Second}}})
	bad := startFault(t, func(w *bufio.Writer, _ *http.Request, done <-chan struct{}) {
		writeHead(w, 200, "Content-Type: text/event-stream\r\nContent-Length: 100000\r\n")
		flushed(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n")
		<-done
	})
	g.serve("qwen", bad.Addr())
	began := time.Now()
	events := streamChat(t, g.addr, `{"model":"chat","stream":true,"messages":[]}`)
	took := time.Since(began)
	if len(events) != 2 || !hasContent(events[0].data) || !strings.Contains(events[1].data, `"error"`) {
		t.Fatalf("events %v: want the content, then an error event", events)
	}
	if took > 10*firstByte {
		t.Fatalf("the stalled stream ended after %v", took)
	}
}

// TestCompressedReply: an instance that gzips its reply although asked for
// identity. The client, which did not ask for compression, gets plain JSON,
// and the usage inside counts.
func TestCompressedReply(t *testing.T) {
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen"}}})
	reply := `{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":7,"completion_tokens":9,"total_tokens":16}}`
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write([]byte(reply))
	_ = zw.Close()
	s := startFault(t, func(w *bufio.Writer, _ *http.Request, _ <-chan struct{}) {
		writeHead(w, 200, "Content-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: "+strconv.Itoa(zipped.Len())+"\r\n")
		_, _ = w.Write(zipped.Bytes())
	})
	g.serve("qwen", s.Addr())
	// net/http adds Accept-Encoding: gzip unless told not to; this client
	// asks for nothing.
	req, _ := http.NewRequest("POST", "http://"+g.addr+"/v1/chat/completions", strings.NewReader(`{"model":"chat","messages":[]}`))
	req.Header.Set("Content-Type", "application/json")
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "" || string(got) != reply {
		t.Fatalf("status %d, Content-Encoding %q, body %q", resp.StatusCode, resp.Header.Get("Content-Encoding"), got)
	}
	if h := <-s.headers; h.Get("Accept-Encoding") != "identity" {
		t.Errorf("upstream asked for Accept-Encoding %q, want identity", h.Get("Accept-Encoding"))
	}
	in := g.metric(`modelgate_tokens_total{model="chat",type="input",source="usage"}`)
	out := g.metric(`modelgate_tokens_total{model="chat",type="output",source="usage"}`)
	if in != 7 || out != 9 {
		t.Fatalf("tokens in %v out %v, want the reply's 7 and 9", in, out)
	}
}

// rssBytes is the resident set of this process, from /proc.
func rssBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// zeros is an endless reader of 'x'.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// TestHugeReply: a 200 MB reply, announced by Content-Length or sent
// chunked, fails the attempt with 502 upstream_error, and the process's
// resident memory grows by less than 20 MB.
func TestHugeReply(t *testing.T) {
	const size = 200 << 20
	tests := []struct {
		name     string
		maxReply int
		head     string
		chunked  bool
	}{
		{"content-length, default limit", 0, "Content-Length: " + strconv.Itoa(size) + "\r\n", false},
		{"chunked, 1 MiB limit", 1 << 20, "Transfer-Encoding: chunked\r\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t, Config{MaxReplySize: tt.maxReply, Routes: []Route{{Model: "chat", Service: "qwen"}}})
			s := startFault(t, func(w *bufio.Writer, _ *http.Request, _ <-chan struct{}) {
				writeHead(w, 200, "Content-Type: application/json\r\n"+tt.head)
				if !tt.chunked {
					_, _ = io.CopyN(w, zeros{}, size)
					return
				}
				chunk := append([]byte(fmt.Sprintf("%x\r\n", 32<<10)), bytes.Repeat([]byte{'x'}, 32<<10)...)
				chunk = append(chunk, "\r\n"...)
				for sent := 0; sent < size; sent += 32 << 10 {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
				_, _ = w.WriteString("0\r\n\r\n")
			})
			g.serve("qwen", s.Addr())
			before := rssBytes(t)
			resp := g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[]}`)
			grew := rssBytes(t) - before
			if resp.StatusCode() != 502 || !bytes.Contains(resp.Body(), []byte("upstream_error")) ||
				!bytes.Contains(resp.Body(), []byte("max_reply_size")) {
				t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
			}
			if grew > 20<<20 {
				t.Fatalf("resident memory grew by %d MB", grew>>20)
			}
			t.Logf("resident memory grew by %.1f MB", float64(grew)/(1<<20))
		})
	}
}

// TestImplausibleUsage: usage that cannot be true is not counted as such;
// the request's tokens are estimated instead, and counters never wrap.
func TestImplausibleUsage(t *testing.T) {
	tests := []struct{ name, usage string }{
		{"negative", `{"prompt_tokens":3,"completion_tokens":-5}`},
		{"huge", `{"prompt_tokens":3,"completion_tokens":10000001}`},
		{"beyond int64", `{"prompt_tokens":99999999999999999999999,"completion_tokens":1}`},
		{"fraction", `{"prompt_tokens":2.5,"completion_tokens":1}`},
		{"string", `{"prompt_tokens":"3","completion_tokens":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen"}}})
			reply := `{"choices":[{"index":0,"message":{"role":"assistant","content":"four words of reply"}}],"usage":` + tt.usage + `}`
			events := "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"four words of reply\"}}]}\n\n" +
				"data: {\"choices\":[],\"usage\":" + tt.usage + "}\n\ndata: [DONE]\n\n"
			s := startReplies(t, reply, events)
			g.serve("qwen", s.Addr())
			if r := g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[{"role":"user","content":"hello there"}]}`); r.StatusCode() != 200 {
				t.Fatalf("status %d", r.StatusCode())
			}
			if r := g.do("POST", "/v1/chat/completions", `{"model":"chat","stream":true,"messages":[{"role":"user","content":"hello there"}]}`, "X-Test", "stream"); r.StatusCode() != 200 {
				t.Fatalf("stream status %d", r.StatusCode())
			}
			for _, typ := range []string{"input", "output"} {
				if v := g.metric(`modelgate_tokens_total{model="chat",type="` + typ + `",source="usage"}`); v > 0 {
					t.Errorf("%s tokens counted as usage: %v", typ, v)
				}
				est := g.metric(`modelgate_tokens_total{model="chat",type="` + typ + `",source="estimated"}`)
				if est <= 0 || est > 100 {
					t.Errorf("%s tokens estimated %v, want a small positive count", typ, est)
				}
			}
		})
	}
}

// TestSlowFailuresOpenBreaker: an instance that fails every request, the
// failures further apart than the breaker's window, is still taken out
// after five in a row.
func TestSlowFailuresOpenBreaker(t *testing.T) {
	const window = 200 * time.Millisecond
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen"}}},
		WithBalancerOptions(balancer.WithBreaker(balancer.BreakerSettings{Window: window})))
	s := startFault(t, func(w *bufio.Writer, _ *http.Request, _ <-chan struct{}) {
		writeHead(w, 500, "Content-Type: application/json\r\nContent-Length: 2\r\n")
		_, _ = w.WriteString("{}")
	})
	g.serve("qwen", s.Addr())
	for i := range 5 {
		if st := g.router.Balancer().Instances()[0].Breaker; st != "closed" {
			t.Fatalf("breaker %s after %d failures", st, i)
		}
		time.Sleep(window + window/4) // the previous failure left the window
		if r := g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[]}`); r.StatusCode() != 500 {
			t.Fatalf("status %d", r.StatusCode())
		}
	}
	if st := g.router.Balancer().Instances()[0].Breaker; st != "open" {
		t.Fatalf("breaker %s after 5 slow failures in a row", st)
	}
}

// TestPassthroughStreamSpread: a pass-through reply in SSE (speech with
// stream_format sse, say) reaches the client event by event as the
// instance sends them, not all at once at its end.
func TestPassthroughStreamSpread(t *testing.T) {
	const gap = 150 * time.Millisecond
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen", FirstByteTimeout: 2 * time.Second}},
		Passthrough: []string{"/v1/audio/"}})
	s := startFault(t, func(w *bufio.Writer, _ *http.Request, _ <-chan struct{}) {
		writeHead(w, 200, "Content-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n")
		for i := range 4 {
			ev := fmt.Sprintf("data: {\"type\":\"speech.audio.delta\",\"audio\":\"w%d\"}\n\n", i)
			fmt.Fprintf(w, "%x\r\n%s\r\n", len(ev), ev)
			_ = w.Flush()
			time.Sleep(gap) // the instance's own pace, which the client must see
		}
		_, _ = w.WriteString("0\r\n\r\n")
	})
	g.serve("qwen", s.Addr())
	resp, err := http.Post("http://"+g.addr+"/v1/audio/speech", "application/json", strings.NewReader(`{"model":"chat","stream_format":"sse","input":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var at []time.Time
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			at = append(at, time.Now())
		}
	}
	if len(at) != 4 {
		t.Fatalf("%d events, want 4", len(at))
	}
	if spread := at[3].Sub(at[0]); spread < 2*gap {
		t.Fatalf("events arrived within %v: buffered, not relayed as they came", spread)
	}
}

// TestActiveHealth: an instance whose engine's health endpoint stops
// answering is not picked once its probes fail, as /admin/pool and the
// metrics show, and is picked again once it passes.
func TestActiveHealth(t *testing.T) {
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen"}},
		Health: HealthConfig{Interval: 50 * time.Millisecond, Timeout: 200 * time.Millisecond}})
	m := g.mocks("qwen", 2, mockllm.Config{}, map[string]string{"engine": "vllm"})
	healthOf := func(addr string) string {
		for _, svc := range g.router.poolView().Services {
			for _, in := range svc.Instances {
				if in.Addr == addr {
					return in.Health
				}
			}
		}
		return "missing"
	}
	await := func(addr, want string) {
		t.Helper()
		if !testkit.Await(10*time.Second, 20*time.Millisecond, func() bool { return healthOf(addr) == want }) {
			t.Fatalf("%s: health %q, want %q", addr, healthOf(addr), want)
		}
	}
	sick := m[0].Addr()
	await(sick, "up")
	m[0].SetMode(mockllm.ModeHang) // every path hangs, /health included
	await(sick, "down")
	if v := g.metric(`modelgate_instance_healthy{service="LLM@@qwen",upstream="` + sick + `",version=""}`); v != 0 {
		t.Errorf("modelgate_instance_healthy = %v for a down instance", v)
	}
	for range 20 {
		if r := g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[]}`); r.StatusCode() != 200 ||
			string(r.Header.Peek("X-Mock-Instance")) != "qwen-1" {
			t.Fatalf("status %d from %s", r.StatusCode(), r.Header.Peek("X-Mock-Instance"))
		}
	}
	m[0].SetMode(mockllm.ModeNormal)
	await(sick, "up")
	if v := g.metric(`modelgate_instance_healthy{service="LLM@@qwen",upstream="` + sick + `",version=""}`); v != 1 {
		t.Errorf("modelgate_instance_healthy = %v for an instance back up", v)
	}
}

// TestImplausibleResponsesUsage: a Responses reply or response.completed
// event whose usage is missing or cannot be true is not counted as usage;
// the tokens are estimated instead, from the input and the output text.
func TestImplausibleResponsesUsage(t *testing.T) {
	for _, tt := range []struct{ name, usage string }{
		{"missing", ``},
		{"null", `,"usage":null`},
		{"negative", `,"usage":{"input_tokens":3,"output_tokens":-5}`},
		{"huge", `,"usage":{"input_tokens":10000001,"output_tokens":1}`},
		{"string", `,"usage":{"input_tokens":"3","output_tokens":1}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t, Config{Routes: []Route{{Model: "resp", Service: "qwen"}}})
			output := `"output":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"four words of reply"}]}]`
			reply := `{"object":"response","status":"completed",` + output + tt.usage + `}`
			events := "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"four words of reply\"}\n\n" +
				"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\"" + tt.usage + "}}\n\n"
			s := startReplies(t, reply, events)
			g.serve("qwen", s.Addr())
			if r := g.do("POST", "/v1/responses", `{"model":"resp","input":"hello there"}`); r.StatusCode() != 200 {
				t.Fatalf("status %d", r.StatusCode())
			}
			if r := g.do("POST", "/v1/responses", `{"model":"resp","stream":true,"input":"hello there"}`, "X-Test", "stream"); r.StatusCode() != 200 ||
				!strings.Contains(string(r.Body()), "response.completed") {
				t.Fatalf("stream status %d: %s", r.StatusCode(), r.Body())
			}
			for _, typ := range []string{"input", "output"} {
				if v := g.metric(`modelgate_tokens_total{model="resp",type="` + typ + `",source="usage"}`); v > 0 {
					t.Errorf("%s tokens counted as usage: %v", typ, v)
				}
				est := g.metric(`modelgate_tokens_total{model="resp",type="` + typ + `",source="estimated"}`)
				if est <= 0 || est > 100 {
					t.Errorf("%s tokens estimated %v, want a small positive count", typ, est)
				}
			}
		})
	}
}
