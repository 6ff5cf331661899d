package router

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/enginetest"
	"github.com/modelgate/modelgate/internal/testkit"
)

// TestFrozenHost stops one of two real llama-servers with SIGSTOP under
// streaming load (its kernel still accepts connections): its streams in
// flight end with an SSE error after first_byte_timeout, its active health
// checks take it out of rotation within the probe window (3 probes 2 s
// apart, 1 s timeout), after which no request is sent to it; requests picked
// for it before that are retried on the other. SIGCONT brings it back.
//
// The test follows requests, not time: on a busy machine one streamed reply
// can take many seconds, so it counts picks rather than completed streams,
// and after SIGCONT it sends short requests of its own until one reaches
// the resumed instance: the streams alone may start too few to show it.
// Three streaming clients leave a slot of the survivor's four free for those.
func TestFrozenHost(t *testing.T) {
	// Generous: a cold llama-server on a busy machine sends its stream's
	// headers only with the first token.
	const firstByte = 3 * time.Second
	srvs := enginetest.Llamas(t, 2, enginetest.LlamaOptions{})
	// Random picks: both instances carry load whatever their latencies, so
	// that streams are in flight on the one frozen and it gets requests
	// again once resumed (p2c would rightly prefer the faster one).
	// The test's own short requests take route "probe": the same instances
	// (breakers, health and picks are per instance), with a first-byte
	// timeout that a busy machine's queueing cannot reach, so that they
	// only show where requests go.
	g := newGateway(t, Config{Routes: []Route{{Model: "tiny", Service: "llama", Retries: 1, Policy: "random",
		FirstByteTimeout: firstByte, Timeout: time.Minute},
		{Model: "probe", Service: "llama", UpstreamModel: "tiny", Retries: 1, Policy: "random", FirstByteTimeout: time.Minute, Timeout: time.Minute}}})
	var list []*discovery.Instance
	for _, s := range srvs {
		host, port, _ := net.SplitHostPort(s.Addr)
		p, _ := strconv.Atoi(port)
		list = append(list, &discovery.Instance{Service: "llama", Host: host, Port: p, Weight: 1, Healthy: true, Enabled: true,
			Metadata: map[string]string{"engine": "llamacpp"}})
	}
	g.pool.Update(discovery.ServiceKey("", "llama"), list)
	g.synced()
	frozen, other := srvs[0], srvs[1]
	stat := func() (health string, picks uint64) {
		h, p, _ := statOf(t, g, frozen.Addr)
		return h, p
	}
	await := func(want string, within time.Duration) time.Duration {
		t.Helper()
		began := time.Now()
		if !testkit.Await(within, 50*time.Millisecond, func() bool { h, _ := stat(); return h == want }) {
			h, _ := stat()
			t.Fatalf("health %q after %v, want %q", h, within, want)
		}
		return time.Since(began)
	}
	await("up", 10*time.Second)

	// Load: three clients streaming long replies back to back.
	client := &http.Client{Timeout: 2 * time.Minute}
	defer client.CloseIdleConnections()
	var ok, errEvents, failed atomic.Int64
	var slowestErr atomic.Int64 // ns from the freeze to a stream's error event
	var why atomic.Value        // the last failure, for the log
	var frozenAt atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	body := `{"model":"tiny","stream":true,"max_tokens":80,"ignore_eos":true,"messages":[{"role":"user","content":"tell a story"}]}`
	for range 3 {
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := client.Post("http://"+g.addr+"/v1/chat/completions", "application/json", strings.NewReader(body))
				if err != nil {
					failed.Add(1)
					why.Store(err.Error())
					continue
				}
				sawErr, done, last := false, false, ""
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					line := sc.Text()
					if line != "" {
						last = line
					}
					if strings.HasPrefix(line, "data: ") && strings.Contains(line, `"error"`) {
						sawErr = true
						if at := frozenAt.Load(); at > 0 {
							t.Logf("error event %v after the freeze: %s", time.Duration(time.Now().UnixNano()-at), line)
						}
					}
					done = done || line == "data: [DONE]"
				}
				resp.Body.Close()
				switch {
				case resp.StatusCode != 200:
					failed.Add(1)
					why.Store(strconv.Itoa(resp.StatusCode) + " " + last)
				case sawErr:
					errEvents.Add(1)
					if at := frozenAt.Load(); at > 0 {
						slowestErr.Store(max(slowestErr.Load(), time.Now().UnixNano()-at))
					}
				case done:
					ok.Add(1)
				default:
					failed.Add(1)
					why.Store("no [DONE]: " + last)
				}
			}
		})
	}
	// short sends one short request on route probe; its outcome counts like
	// a stream's.
	short := func() {
		resp, err := client.Post("http://"+g.addr+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"probe","max_tokens":2,"messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			failed.Add(1)
			why.Store(err.Error())
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			failed.Add(1)
			why.Store("short request: " + strconv.Itoa(resp.StatusCode) + " " + string(b))
		}
	}
	if !testkit.Await(2*time.Minute, 50*time.Millisecond, func() bool { return ok.Load() >= 6 || failed.Load() > 0 }) || failed.Load() > 0 {
		t.Fatalf("before the freeze: %d ok, %d failed (%v)", ok.Load(), failed.Load(), why.Load())
	}
	if !testkit.Await(20*time.Second, 5*time.Millisecond, func() bool { _, _, inflight := statOf(t, g, frozen.Addr); return inflight > 0 }) {
		t.Fatal("no request in flight on the instance to freeze")
	}
	if err := frozen.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozenAt.Store(time.Now().UnixNano())
	resumed := false
	defer func() {
		if !resumed {
			_ = frozen.Signal(syscall.SIGCONT)
		}
	}()
	out := await("down", 10*time.Second)
	t.Logf("frozen instance out of rotation %v after SIGSTOP", out)
	if out > 8*time.Second {
		t.Errorf("out of rotation only after %v", out)
	}
	// Load keeps running: the next requests all go to the other instance.
	_, picksAtDown := stat()
	_, otherAtDown, _ := statOf(t, g, other.Addr)
	for range 3 {
		short()
	}
	if _, p, _ := statOf(t, g, other.Addr); p < otherAtDown+3 {
		t.Errorf("the other instance was picked %d times for the 3 requests sent while one was out of rotation", p-otherAtDown)
	}
	if _, p := stat(); p != picksAtDown {
		t.Errorf("%d requests picked the frozen instance after it was out of rotation", p-picksAtDown)
	}
	// A stream the frozen instance had started ends with an SSE error
	// event; one still waiting for its headers is retried on the other
	// instance. Which of the two the freeze meets is up to timing: either
	// way none may hang or fail (checked at the end), and errors come
	// after about first_byte_timeout.
	if d := time.Duration(slowestErr.Load()); errEvents.Load() > 0 && d > firstByte+2*time.Second {
		t.Errorf("a stream on the frozen instance ended %v after the freeze (first_byte_timeout %v)", d, firstByte)
	}

	if err := frozen.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	back := await("up", 10*time.Second)
	_, picksAtUp := stat()
	// Its breaker may have opened on the attempts that timed out while it
	// was frozen: passing its health check again turns it half-open at
	// once, without waiting out open_timeout (10 s). Each short request is
	// picked at random between the two instances.
	sent := 0
	if !testkit.Await(30*time.Second, 50*time.Millisecond, func() bool {
		if _, p := stat(); p > picksAtUp {
			return true
		}
		short()
		sent++
		return false
	}) {
		brk := ""
		for _, st := range g.router.Balancer().Instances() {
			if st.Addr == frozen.Addr {
				brk = string(st.Breaker)
			}
		}
		t.Fatalf("the resumed instance got none of %d requests sent in 30 s after it was up (breaker %s)", sent, brk)
	}
	t.Logf("up %v after SIGCONT, picked after %d short requests; streams: %d ok, %d ended with an error event; %d requests failed",
		back, sent, ok.Load(), errEvents.Load(), failed.Load())
	if failed.Load() > 0 {
		t.Errorf("%d requests failed outright (want retried or an SSE error): %v", failed.Load(), why.Load())
	}
}

// statOf is the balancer's health, picks and in-flight count of addr.
func statOf(t *testing.T, g *gateway, addr string) (health string, picks uint64, inflight int64) {
	t.Helper()
	for _, st := range g.router.Balancer().Instances() {
		if st.Addr == addr {
			return st.Health, st.Picks, st.InFlight
		}
	}
	t.Fatal(addr + " left the pool")
	return "", 0, 0
}
