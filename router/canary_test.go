package router

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/mockllm"
)

// adminDo calls the admin handler in process.
func adminDo(r *Router, method, uri string) (int, string) {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	r.AdminHandler(nil, nil)(&ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Body())
}

func canaryGateway(t *testing.T, v2 mockllm.Config, spec *canary.Spec) (*gateway, []*mockllm.Server, []*mockllm.Server) {
	t.Helper()
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen", Canary: spec}}})
	var list []*discovery.Instance
	var servers [2][]*mockllm.Server
	for i, cfg := range []mockllm.Config{{}, v2} {
		v := "v" + strconv.Itoa(i+1)
		cfg.Name = v
		s, err := mockllm.Start("127.0.0.1:0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		servers[i] = []*mockllm.Server{s}
		host, port, _ := net.SplitHostPort(s.Addr())
		p, _ := strconv.Atoi(port)
		list = append(list, &discovery.Instance{Service: "qwen", Host: host, Port: p, Weight: 1, Healthy: true, Enabled: true,
			Metadata: map[string]string{"version": v}})
	}
	g.pool.Update(discovery.ServiceKey("", "qwen"), list)
	g.synced()
	return g, servers[0], servers[1]
}

// TestCanaryAccountingAndRollback: the router reports each version's
// outcomes, streamed or not; a canary failing a third of its requests is
// rolled back at the first judgment and then gets no more requests.
func TestCanaryAccountingAndRollback(t *testing.T) {
	spec := &canary.Spec{Version: "v2", Baseline: "v1", Steps: []float64{50, 100}, MinRequests: 40, StepAfter: time.Hour}
	g, v1, v2 := canaryGateway(t, mockllm.Config{FailRate: 0.1, Seed: 1}, spec)
	c := g.router.Canary()
	sent := 0
	var w canary.WindowView
	for ; sent < 2000; sent++ { // until both have min_requests
		if w = c.Status()[0].Window; w.Canary.Requests >= 40 && w.Baseline.Requests >= 40 {
			break
		}
		body := `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`
		if sent%2 == 0 {
			body = `{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		}
		g.do("POST", "/v1/chat/completions", body)
	}
	st := c.Status()[0]
	if w.Canary.Requests+w.Baseline.Requests != sent || w.Canary.Requests < 40 || w.Baseline.Requests < 40 {
		t.Fatalf("after %d requests: window %+v", sent, w)
	}
	if w.Baseline.Errors != 0 || w.Canary.Errors < 2 || w.Canary.Errors > int(v2[0].Requests()) {
		t.Fatalf("errors: canary %d of %d, baseline %d", w.Canary.Errors, w.Canary.Requests, w.Baseline.Errors)
	}
	if w.Baseline.TTFTP95ms <= 0 || w.Baseline.TokensPerSecond <= 0 || w.Baseline.BadReplies != 0 || w.Baseline.Replies != w.Baseline.Requests {
		t.Fatalf("baseline figures %+v", w.Baseline)
	}
	c.Tick()
	st = c.Status()[0]
	if st.State != canary.Aborted || st.LastVerdict == nil || st.LastVerdict.Breached()[0] != "error_ratio" {
		t.Fatalf("after tick: %s %+v", st.State, st.LastVerdict)
	}
	if g.metric(`modelgate_canary_step{model="chat"}`) != 0 || g.metric(`modelgate_canary_verdicts_total{model="chat",result="breach"}`) != 1 {
		t.Fatal("metrics do not show the breach")
	}
	before := v2[0].Requests()
	for range 50 {
		g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`)
	}
	if n := v2[0].Requests() - before; n != 0 {
		t.Fatalf("rolled-back canary got %d requests", n)
	}
	if v1[0].Requests() < 50 {
		t.Fatalf("baseline got %d", v1[0].Requests())
	}
	code, page := adminDo(g.router, "GET", "/")
	if code != 200 || !strings.Contains(page, `data-route="chat" data-state="aborted"`) || !strings.Contains(page, "BREACH") {
		t.Fatalf("status page %d:\n%s", code, page)
	}
}

// TestCanaryShortReplies: finish_reason "length" at a few tokens counts as
// a bad reply, for streams and whole replies.
func TestCanaryShortReplies(t *testing.T) {
	spec := &canary.Spec{Version: "v2", Baseline: "v1", Steps: []float64{50, 100}, MinRequests: 1000, StepAfter: time.Hour}
	g, _, _ := canaryGateway(t, mockllm.Config{}, spec)
	for i := range 100 {
		body := `{"model":"chat","max_tokens":3,"messages":[{"role":"user","content":"hi"}]}`
		if i%2 == 0 {
			body = `{"model":"chat","max_tokens":3,"stream":true,"messages":[{"role":"user","content":"hi"}]}`
		}
		g.do("POST", "/v1/chat/completions", body)
	}
	w := g.router.Canary().Status()[0].Window
	for name, f := range map[string]canary.Figures{"canary": w.Canary, "baseline": w.Baseline} {
		if f.Replies == 0 || f.BadReplies != f.Replies {
			t.Errorf("%s: %d of %d replies bad, want all", name, f.BadReplies, f.Replies)
		}
	}
}

func TestCanaryAdminAPI(t *testing.T) {
	g, _, _ := canaryGateway(t, mockllm.Config{}, nil)
	for _, tt := range []struct {
		method, uri string
		status      int
		want        string
	}{
		{"GET", "/admin/canary", 200, "[]"},
		{"PUT", "/admin/canary", 405, "GET or POST"},
		{"POST", "/admin/canary?route=nope&version=v2&baseline=v1", 400, "no such route"},
		{"POST", "/admin/canary?route=chat&baseline=v1", 400, "version is empty"},
		{"POST", "/admin/canary?route=chat&version=v2&baseline=v1&steps=5,x", 400, "not a number"},
		{"POST", "/admin/canary?route=chat&version=v2&baseline=v1&steps=50,5", 400, "not above"},
		{"POST", "/admin/canary?route=chat&version=v2&baseline=v1&step_after=soon", 400, "step_after"},
		{"POST", "/admin/canary?route=chat&version=v2&baseline=v1&min_requests=-3", 400, "min_requests"},
		{"POST", "/admin/canary?route=chat&version=v2&baseline=v1&colour=red", 400, "unknown argument"},
		{"POST", "/admin/canary?route=chat&action=abort", 404, "no rollout"},
		{"POST", "/admin/canary?route=chat&action=explode", 400, "want start, abort or clear"},
		{"POST", "/admin/canary?route=chat&version=v2&baseline=v1&steps=10,100&step_after=1m&min_requests=5&ttft_p95_factor=2", 200, `"share_percent": 10`},
		{"GET", "/admin/canary", 200, `"ttft_p95_factor": 2`},
		{"POST", "/admin/canary?route=chat&action=abort&reason=looked+wrong", 200, `"reason": "looked wrong"`},
		{"GET", "/admin/canary", 200, `"state": "aborted"`},
		{"POST", "/admin/canary?route=chat&action=clear", 200, "[]"},
	} {
		code, body := adminDo(g.router, tt.method, tt.uri)
		if code != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("%s %s: %d %s, want %d with %q", tt.method, tt.uri, code, body, tt.status, tt.want)
		}
		if code >= 400 && tt.status != 405 {
			var e struct{ Error struct{ Message string } }
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Message == "" {
				t.Errorf("%s %s: error body %q is not JSON with a message", tt.method, tt.uri, body)
			}
		}
	}
}
