package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/nacostest"
	"github.com/modelgate/modelgate/internal/testkit"
)

// canarySetup registers a v1 and a v2 mock in a fresh group of the real
// Nacos and returns a daemon config with route chat (sticky on X-User).
func canarySetup(t *testing.T, v1cfg, v2cfg mockllm.Config, spec *canary.Spec) (cfg *Config, group string, v1, v2 *mockllm.Server) {
	t.Helper()
	addr := nacostest.Addr(t)
	group = testkit.UniqueGroup("E2EAUTOPILOT")
	v1 = startMock(t, "v1", v1cfg)
	v2 = startMock(t, "v2", v2cfg)
	nacostest.Register(t, addr, group, "qwen", "127.0.0.1", port(v1.Addr()), 1, map[string]string{"version": "v1"})
	nacostest.Register(t, addr, group, "qwen", "127.0.0.1", port(v2.Addr()), 1, map[string]string{"version": "v2"})
	cfg = nacosConfig(addr, group, "qwen", "keep")
	cfg.Router.Routes[0].StickyHeader = "X-User"
	cfg.Router.Routes[0].Canary = spec
	cfg.Router.AccessLog.Disabled = true
	return cfg, group, v1, v2
}

func waitBoth(t *testing.T, d *testDaemon, group string) {
	t.Helper()
	d.waitPool(t, discovery.ServiceKey(group, "qwen"), 10*time.Second, func(l []*discovery.Instance) bool { return len(l) == 2 })
}

// driver sends chat requests through the official SDK from a few workers,
// each request as one of keys sticky users, and records the versions each
// user was served by, in order.
type driver struct {
	mu     sync.Mutex
	seen   map[string][]string // by user: versions, consecutive repeats folded
	failed int
	sent   int
	stop   func()
	done   sync.WaitGroup
}

func drive(t *testing.T, d *testDaemon, keys int, stream bool) *driver {
	return driveN(t, d, 4, keys, stream)
}

func driveN(t *testing.T, d *testDaemon, workers, keys int, stream bool) *driver {
	t.Helper()
	dr := &driver{seen: map[string][]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	dr.stop = func() { cancel(); dr.done.Wait() }
	t.Cleanup(dr.stop)
	c := d.client()
	for w := range workers {
		dr.done.Go(func() {
			for i := w; ctx.Err() == nil; i += workers {
				user := fmt.Sprint("user-", i%keys)
				var resp *http.Response
				opts := []option.RequestOption{option.WithHeader("X-User", user), option.WithResponseInto(&resp)}
				params := openai.ChatCompletionNewParams{Model: "chat",
					Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello there")}}
				var err error
				if stream {
					s := c.Chat.Completions.NewStreaming(ctx, params, opts...)
					for s.Next() {
					}
					err = s.Err()
				} else {
					_, err = c.Chat.Completions.New(ctx, params, opts...)
				}
				if ctx.Err() != nil {
					return
				}
				dr.mu.Lock()
				dr.sent++
				if err != nil || resp == nil || resp.StatusCode != http.StatusOK {
					dr.failed++ // (with WithResponseInto the SDK returns no error for a 5xx)
				}
				if resp != nil {
					if v := resp.Header.Get("X-Mock-Instance"); v != "" {
						if s := dr.seen[user]; len(s) == 0 || s[len(s)-1] != v {
							dr.seen[user] = append(s, v)
						}
					}
				}
				dr.mu.Unlock()
			}
		})
	}
	return dr
}

// checkSticky: every user saw v1 or v2 only, and never went back from v2
// to v1 (unless allowBack, after a rollback: then v2 may end with v1 once).
func (dr *driver) checkSticky(t *testing.T, allowBack bool) (moved int) {
	t.Helper()
	dr.mu.Lock()
	defer dr.mu.Unlock()
	for user, s := range dr.seen {
		for _, v := range s {
			if v != "v1" && v != "v2" {
				t.Errorf("%s was served by %q", user, v)
			}
		}
		switch {
		case slices.Equal(s, []string{"v1"}), slices.Equal(s, []string{"v2"}):
		case slices.Equal(s, []string{"v1", "v2"}):
			moved++
		case allowBack && (slices.Equal(s, []string{"v2", "v1"}) || slices.Equal(s, []string{"v1", "v2", "v1"})):
			moved++
		default:
			t.Errorf("%s flipped between versions: %v", user, s)
		}
	}
	return moved
}

func canaryStatus(t *testing.T, admin string) canary.Status {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://" + admin + "/admin/canary")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []canary.Status
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list) != 1 {
		t.Fatalf("GET /admin/canary: %v, %d rollouts", err, len(list))
	}
	return list[0]
}

// waitCanary polls the daemon's /admin/canary until cond holds.
func waitCanary(t *testing.T, admin string, within time.Duration, cond func(canary.Status) bool) canary.Status {
	t.Helper()
	var st canary.Status
	if !testkit.Await(within, 20*time.Millisecond, func() bool { st = canaryStatus(t, admin); return cond(st) }) {
		b, _ := json.MarshalIndent(st, "", " ")
		t.Fatalf("canary not there within %v:\n%s", within, b)
	}
	return st
}

// noisyMachine are thresholds for versions of equal speed on a loaded
// 2-core test machine, where a p95 over a few dozen 5 ms requests jumps by
// tens of milliseconds with the scheduler: TTFT within 100 ms of the
// baseline and half its tokens per second are noise here, not a breach.
// TestCanaryAutopilotRollsBackSlowTTFT checks the default TTFT threshold.
var noisyMachine = canary.Thresholds{TTFTSlack: 100 * time.Millisecond, TokensFactor: 0.5}

// TestCanaryAutopilotPromotes: a healthy v2 with v1's latency goes through
// every step to promoted; sticky users only ever move from v1 to v2.
func TestCanaryAutopilotPromotes(t *testing.T) {
	lat := mockllm.Config{Latency: 5 * time.Millisecond}
	spec := &canary.Spec{Version: "v2", Baseline: "v1", Steps: []float64{5, 25, 50, 100}, StepAfter: time.Second, MinRequests: 20,
		Thresholds: noisyMachine}
	cfg, group, v1, _ := canarySetup(t, lat, lat, spec)
	d := startDaemon(t, cfg)
	waitBoth(t, d, group)
	dr := drive(t, d, 200, false)
	st := waitCanary(t, d.admin, 90*time.Second, func(s canary.Status) bool { return s.State != canary.Running })
	dr.stop()
	if st.State != canary.Promoted || st.Share != 100 || st.Verdicts.Pass != 3 || st.Verdicts.Breach != 0 {
		t.Fatalf("state %s share %v verdicts %+v: %s", st.State, st.Share, st.Verdicts, st.Reason)
	}
	var steps []float64
	for _, ev := range st.Events {
		if ev.Verdict != nil {
			steps = append(steps, ev.Verdict.Share)
			t.Logf("%s", ev.Verdict.Summary())
		}
	}
	if !slices.Equal(steps, []float64{5, 25, 50}) { // passing 50 % promotes to 100 %
		t.Fatalf("verdicts at shares %v", steps)
	}
	moved := dr.checkSticky(t, false)
	t.Logf("%d requests, %d failed; %d of %d users moved from v1 to v2", dr.sent, dr.failed, moved, len(dr.seen))
	if dr.failed != 0 || moved == 0 {
		t.Fatalf("%d failed requests, %d users moved", dr.failed, moved)
	}
	before := v1.Requests()
	for range 20 {
		if _, err := chat(context.Background(), d.client(), "chat"); err != nil {
			t.Fatal(err)
		}
	}
	if n := v1.Requests() - before; n != 0 {
		t.Fatalf("v1 served %d of 20 requests after v2 was promoted", n)
	}
	m := string(scrape(t, d.admin))
	for _, want := range []string{`modelgate_canary_step{model="chat"} 4`, `modelgate_canary_verdicts_total{model="chat",result="pass"} 3`} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// rolledBack runs traffic until the rollout ends and checks that it was
// rolled back within its first two steps on the checks in breach, with
// those in pass passing, and that v2 got no request once a second had
// passed since the verdict.
func rolledBack(t *testing.T, d *testDaemon, v2 *mockllm.Server, dr *driver, breach, pass []string) canary.Status {
	t.Helper()
	st := waitCanary(t, d.admin, 60*time.Second, func(s canary.Status) bool { return s.State != canary.Running })
	v := st.LastVerdict
	if st.State != canary.Aborted || st.Share != 0 || v == nil || v.Result != canary.Breach || v.Step > 2 {
		t.Fatalf("state %s share %v verdict %+v", st.State, st.Share, v)
	}
	t.Logf("%s", v.Summary())
	for _, c := range v.Checks {
		if slices.Contains(breach, c.Name) && c.OK || slices.Contains(pass, c.Name) && !c.OK {
			t.Errorf("check %s: ok=%v, want breaches on %v and passes on %v", c.Name, c.OK, breach, pass)
		}
	}
	// Traffic goes on; a second after the verdict v2 gets nothing more.
	time.Sleep(time.Until(v.At.Add(time.Second)))
	n0 := v2.Requests()
	dr.mu.Lock()
	sent0 := dr.sent
	dr.mu.Unlock()
	sent := func() int {
		dr.mu.Lock()
		defer dr.mu.Unlock()
		return dr.sent
	}
	if !testkit.Await(5*time.Second, 10*time.Millisecond, func() bool { return sent() >= sent0+200 }) {
		t.Fatalf("traffic stalled at %d requests", sent())
	}
	dr.stop()
	if n := v2.Requests() - n0; n != 0 {
		t.Fatalf("v2 got %d requests more than a second after the verdict", n)
	}
	moved := dr.checkSticky(t, true)
	t.Logf("%d requests (%d failed); %d users had been on v2", dr.sent, dr.failed, moved)
	return st
}

// TestCanaryAutopilotRollsBackErrors: a v2 that fails 10 % of requests
// is rolled back within a step; sticky users on it go back to v1.
func TestCanaryAutopilotRollsBackErrors(t *testing.T) {
	lat := mockllm.Config{Latency: 5 * time.Millisecond}
	bad := lat
	bad.FailRate, bad.Seed = 0.1, 7
	spec := &canary.Spec{Version: "v2", Baseline: "v1", Steps: []float64{10, 50, 100}, StepAfter: time.Second, MinRequests: 100,
		Thresholds: noisyMachine}
	cfg, group, _, v2 := canarySetup(t, lat, bad, spec)
	d := startDaemon(t, cfg)
	waitBoth(t, d, group)
	st := rolledBack(t, d, v2, drive(t, d, 100, false), []string{"error_ratio"}, []string{"bad_reply_ratio"})
	if r := st.LastVerdict.Canary.ErrorRatio; r < 0.03 || r > 0.2 {
		t.Errorf("canary error ratio %.3f, want about 0.1", r)
	}
	m := string(scrape(t, d.admin))
	for _, want := range []string{`modelgate_canary_step{model="chat"} 0`, `modelgate_canary_verdicts_total{model="chat",result="breach"} 1`} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestCanaryAutopilotRollsBackSlowTTFT: a v2 whose first token comes 3×
// later than v1's, with no errors, is rolled back on TTFT.
func TestCanaryAutopilotRollsBackSlowTTFT(t *testing.T) {
	// Latencies well above this busy machine's scheduling noise.
	fast := mockllm.Config{Latency: 60 * time.Millisecond, ChunkGap: 2 * time.Millisecond}
	slow := fast
	slow.Latency = 180 * time.Millisecond
	spec := &canary.Spec{Version: "v2", Baseline: "v1", Steps: []float64{20, 50, 100}, StepAfter: time.Second, MinRequests: 50}
	cfg, group, _, v2 := canarySetup(t, fast, slow, spec)
	d := startDaemon(t, cfg)
	waitBoth(t, d, group)
	st := rolledBack(t, d, v2, driveN(t, d, 12, 100, true), []string{"ttft_p95_ms"}, []string{"error_ratio", "bad_reply_ratio"})
	if c, b := st.LastVerdict.Canary.TTFTP95ms, st.LastVerdict.Baseline.TTFTP95ms; c < 2*b {
		t.Errorf("TTFT p95 canary %.1f ms vs baseline %.1f ms, want about 3×", c, b)
	}
}
