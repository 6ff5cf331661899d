package router

import (
	"bufio"
	"context"
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
)

// TestFrozenHost stops one of two real llama-servers with SIGSTOP under
// streaming load (its kernel still accepts connections): its streams in
// flight end with an SSE error after first_byte_timeout, its active health
// checks take it out of rotation within the probe window (3 probes 2 s
// apart, 1 s timeout), after which no request is sent to it; requests picked
// for it before that are retried on the other. SIGCONT brings it back.
func TestFrozenHost(t *testing.T) {
	// Generous: a cold llama-server on a busy machine sends its stream's
	// headers only with the first token.
	const firstByte = 3 * time.Second
	srvs := enginetest.Llamas(t, 2, enginetest.LlamaOptions{})
	// Random picks: both instances carry load whatever their latencies, so
	// that streams are in flight on the one frozen and it gets requests
	// again once resumed (p2c would rightly prefer the faster one).
	g := newGateway(t, Config{Routes: []Route{{Model: "tiny", Service: "llama", Retries: 1, Policy: "random",
		FirstByteTimeout: firstByte, Timeout: time.Minute}}})
	var list []*discovery.Instance
	for _, s := range srvs {
		host, port, _ := net.SplitHostPort(s.Addr)
		p, _ := strconv.Atoi(port)
		list = append(list, &discovery.Instance{Service: "llama", Host: host, Port: p, Weight: 1, Healthy: true, Enabled: true,
			Metadata: map[string]string{"engine": "llamacpp"}})
	}
	g.pool.Update(discovery.ServiceKey("", "llama"), list)
	g.synced()
	frozen := srvs[0]
	stat := func() (health string, picks uint64) {
		h, p, _ := statOf(t, g, frozen.Addr)
		return h, p
	}
	await := func(want string, within time.Duration) time.Duration {
		t.Helper()
		began := time.Now()
		for h, _ := stat(); h != want; h, _ = stat() {
			if time.Since(began) > within {
				t.Fatalf("health %q after %v, want %q", h, within, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return time.Since(began)
	}
	await("up", 10*time.Second)

	// Load: four clients streaming long replies back to back.
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
	for range 4 {
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
	for ok.Load() < 8 {
		if ctx.Err() != nil || failed.Load() > 0 {
			t.Fatalf("before the freeze: %d ok, %d failed (%v)", ok.Load(), failed.Load(), why.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}

	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, _, inflight := statOf(t, g, frozen.Addr); inflight > 0 {
			break // freeze it with a stream in flight
		}
		if time.Now().After(deadline) {
			t.Fatal("no request in flight on the instance to freeze")
		}
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
	_, picksAtDown := stat()
	okAtDown := ok.Load()
	time.Sleep(3 * time.Second) // load keeps running: none of it may go to the frozen instance
	if _, p := stat(); p != picksAtDown {
		t.Errorf("%d requests picked the frozen instance after it was out of rotation", p-picksAtDown)
	}
	if ok.Load() <= okAtDown {
		t.Errorf("no stream completed on the other instance meanwhile")
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
	// was frozen: then it gets requests again once the breaker lets probes
	// through (open_timeout, 10 s).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, p := stat(); p > picksAtUp {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the resumed instance got no request")
		}
	}
	t.Logf("back in rotation %v after SIGCONT; streams: %d ok, %d ended with an error event, %d failed",
		back, ok.Load(), errEvents.Load(), failed.Load())
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
