package router

import (
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/mockllm"
)

// chromium returns Debian's Chromium, installing it with scripts/chromium.sh
// if needed.
func chromium(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	out, err := exec.Command("bash", filepath.Join(filepath.Dir(file), "..", "scripts", "chromium.sh")).Output()
	if err != nil {
		t.Fatalf("no Chromium for the browser test: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// browserPage serves the router's admin handler on loopback, loads its
// status page in headless Chromium and returns the DOM Chromium built; it
// also saves a screenshot as name.png in the test's artefact directory
// (kept with go test -artifacts -outputdir DIR) and logs its path.
func browserPage(t *testing.T, browser string, r *Router, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: r.AdminHandler(nil, nil)}
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(ln) })
	defer func() { _ = srv.Shutdown(); wg.Wait() }()
	page := "http://" + ln.Addr().String() + "/"
	run := func(args ...string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, browser, append([]string{"--headless", "--no-sandbox", "--disable-gpu",
			"--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
			"--disable-sync", "--hide-scrollbars", "--user-data-dir=" + t.TempDir()}, append(args, page)...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", args, err)
		}
		return out
	}
	dom := string(run("--dump-dom"))
	shot := filepath.Join(t.ArtifactDir(), name+".png")
	run("--window-size=1500,1300", "--screenshot="+shot)
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot at %s: %v", shot, err)
	}
	t.Logf("screenshot of the %s status page: %s", name, shot)
	return dom
}

// statusBench is a router on a test clock that the test moves 10 s at a
// time (plus the wall time that passes, so latencies are real), and the
// mock instances it routes to.
type statusBench struct {
	*gateway
	offset atomic.Int64
}

func newStatusBench(t *testing.T, cfg Config) *statusBench {
	b := &statusBench{}
	start, wall := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC), time.Now()
	clk := testClock{now: func() time.Time { return start.Add(time.Duration(b.offset.Load()) + time.Since(wall)) }}
	b.gateway = newGateway(t, cfg, WithClock(clk),
		WithBalancerOptions(balancer.WithBreaker(balancer.BreakerSettings{OpenTimeout: time.Hour})),
		func(r *Router) { r.sampleEvery = time.Hour }) // the test takes the samples

	return b
}

// serve puts instances of svc in the pool, one per metadata map.
func (b *statusBench) serve(svc string, cfg mockllm.Config, metas ...map[string]string) []*mockllm.Server {
	b.t.Helper()
	var out []*mockllm.Server
	var list []*discovery.Instance
	for i, meta := range metas {
		c := cfg
		c.Name, c.Seed = svc+"-"+strconv.Itoa(i), int64(i)
		s, err := mockllm.Start("127.0.0.1:0", c)
		if err != nil {
			b.t.Fatal(err)
		}
		b.t.Cleanup(func() { _ = s.Close() })
		host, port, _ := net.SplitHostPort(s.Addr())
		p, _ := strconv.Atoi(port)
		list = append(list, &discovery.Instance{Service: svc, Host: host, Port: p, Weight: 1, Healthy: true, Enabled: true, Metadata: meta})
		out = append(out, s)
	}
	b.pool.Update(discovery.ServiceKey("", svc), list)
	b.synced()
	return out
}

// history plays 15 minutes and 10 s: at each 10 s step, step(i) sends the
// step's requests and the status page's sampler takes its reading.
func (b *statusBench) history(step func(i int)) {
	for i := range 91 {
		if i > 0 {
			b.offset.Add(int64(historyEvery))
		}
		step(i)
		b.router.sampleStatus()
	}
}

// send sends n streamed chat requests for model and returns how many failed.
func (b *statusBench) send(model string, n int) (failed int) {
	for range n {
		r := b.do("POST", "/v1/chat/completions", `{"model":"`+model+`","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		if r.StatusCode() != 200 {
			failed++
		}
	}
	return failed
}

// row returns the DOM of the table row whose attribute attr is val.
func row(t *testing.T, dom, attr, val string) string {
	t.Helper()
	i := strings.Index(dom, attr+`="`+val+`"`)
	if i < 0 {
		t.Fatalf("no row with %s=%q", attr, val)
	}
	j := strings.Index(dom[i:], "</tr>")
	return dom[i : i+j]
}

// stripOf returns the SVG group of a plot's strip.
func stripOf(t *testing.T, dom, name string) string {
	t.Helper()
	i := strings.Index(dom, `data-strip="`+name+`"`)
	if i < 0 {
		t.Fatalf("no strip %q", name)
	}
	j := strings.Index(dom[i:], "</g>")
	return dom[i : i+j]
}

var actualShare = regexp.MustCompile(`class="actual">([^<]*)<`)

// TestStatusPageHealthy loads the status page of a healthy setup with a
// canary in headless Chromium: routes with their rates, split and plots,
// instances with weights, versions and breaker states, nothing flagged.
func TestStatusPageHealthy(t *testing.T) {
	browser := chromium(t)
	b := newStatusBench(t, Config{Routes: []Route{
		{Model: "chat", Aliases: []string{"gpt-4o-mini"}, Service: "qwen",
			Canary: &canary.Spec{Version: "v2", Baseline: "v1", Steps: []float64{20, 50}, StepAfter: time.Hour, MinRequests: 1 << 20}},
		{Model: "small", Service: "tiny"},
	}})
	cfg := mockllm.Config{Latency: 3 * time.Millisecond, Jitter: 4 * time.Millisecond}
	qwen := b.serve("qwen", cfg, map[string]string{"version": "v1", "gpu": "a100"}, map[string]string{"version": "v1", "gpu": "a100"},
		map[string]string{"version": "v2", "gpu": "a100"})
	b.serve("tiny", cfg, map[string]string{"version": "v1"})
	b.history(func(i int) {
		n := 3 + i%20/5
		if i > 84 {
			n = 20 // the last minute: enough requests to measure the canary's share
		}
		if f := b.send("chat", n) + b.send("small", 1+i%2); f != 0 {
			t.Fatalf("step %d: %d requests failed", i, f)
		}
	})
	dom := browserPage(t, browser, b.router, "status-healthy")
	defer func() {
		if t.Failed() {
			t.Logf("DOM:\n%s", dom)
		}
	}()
	for _, want := range []string{
		`<title>modelgate status</title>`, `http-equiv="refresh"`,
		`<div id="attention" class="ok">All routes and instances are healthy.</div>`,
		`data-model="chat" data-level="ok"`, `data-model="small" data-level="ok"`,
		`<code>gpt-4o-mini</code>`, `<code>LLM@@qwen</code>`,
		`data-addr="` + qwen[0].Addr() + `" data-level="ok"`, `data-addr="` + qwen[2].Addr() + `" data-level="ok"`,
		`<code>gpu=a100</code>`, `>v2<`, `>closed<`, `discovery <span class="ok">synced</span>`,
		`<span class="configured">v1 80 % · v2 20 %</span>`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	chat := row(t, dom, "data-model", "chat")
	for _, want := range []string{`class="instances ok">3 of 3<`, `class="num errors ok">0.0 %<`, `class="tier ok">normal`} {
		if !strings.Contains(chat, want) {
			t.Errorf("chat row lacks %q", want)
		}
	}
	if strings.Contains(chat, `class="num ttft ok">–<`) {
		t.Errorf("chat shows no TTFT p95")
	}
	// Each route has its plot of 90 points, every strip drawn but the
	// canary's on the route without one.
	if n := strings.Count(dom, `<svg class="plot"`); n != 2 {
		t.Errorf("%d plots, want 2", n)
	}
	if !strings.Contains(chat, `data-points="90"`) || strings.Count(chat, `class="curve"`) != 4 || !strings.Contains(chat, `class="ref"`) {
		t.Errorf("chat's plot lacks points or curves")
	}
	if small := row(t, dom, "data-model", "small"); strings.Count(small, `class="curve"`) != 3 || !strings.Contains(small, "no canary") {
		t.Errorf("small's plot: want 3 curves and no canary")
	}
	// The canary's actual share over the last minute is near its 20 %.
	m := actualShare.FindStringSubmatch(chat)
	if m == nil {
		t.Fatal("no actual split on chat")
	}
	v2 := -1.0
	for part := range strings.SplitSeq(m[1], " · ") {
		if s, ok := strings.CutPrefix(part, "v2 "); ok {
			v2, _ = strconv.ParseFloat(strings.TrimSuffix(s, " %"), 64)
		}
	}
	t.Logf("chat's split over the last minute: %s", m[1])
	if v2 < 5 || v2 > 40 {
		t.Errorf("actual split %q: v2's share %v %%, want about 20 %%", m[1], v2)
	}
}

// TestStatusPageFailing loads the status page of a failing setup: an
// instance whose breaker opened while its route kept serving (errors), the
// one instance of another route dead with its breaker open, a pinned tier.
// What is wrong comes first, in red, and the dead instance shows no latency.
func TestStatusPageFailing(t *testing.T) {
	browser := chromium(t)
	b := newStatusBench(t, Config{Routes: []Route{
		{Model: "chat", Service: "qwen", Policy: "wrr"}, // the failing instance keeps its turns
		{Model: "solo", Service: "solo"},
		{Model: "quiet", Service: "calm"},
	}})
	cfg := mockllm.Config{Latency: 3 * time.Millisecond, Jitter: 4 * time.Millisecond}
	qwen := b.serve("qwen", cfg, map[string]string{"version": "v1"}, map[string]string{"version": "v1"})
	solo := b.serve("solo", cfg, map[string]string{"version": "v1"})
	b.serve("calm", cfg, map[string]string{"version": "v1"})
	failed := 0
	b.history(func(i int) {
		switch i {
		case 60: // the last 5 minutes: slower and failing
			qwen[0].Set(func(c *mockllm.Config) { c.Latency, c.FailRate = 40*time.Millisecond, 0.2 })
			qwen[1].Set(func(c *mockllm.Config) { c.FailRate = 1 })
		case 75:
			solo[0].Set(func(c *mockllm.Config) { c.FailRate = 1 })
		}
		failed += b.send("chat", 4+i%3) + b.send("solo", 2) + b.send("quiet", 1)
	})
	if failed == 0 {
		t.Fatal("no request failed")
	}
	// Pin chat's tier through the admin API, with a reason that is not HTML.
	args := url.Values{"route": {"chat"}, "tier": {"shed"}, "ttl": {"10m"}, "reason": {"rack 4 maintenance <b>&</b>"}}
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/admin/degrade?" + args.Encode())
	b.router.AdminHandler(nil, nil)(&ctx)
	if ctx.Response.StatusCode() != 200 {
		t.Fatalf("pin: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	for _, in := range b.router.Balancer().Instances() {
		if in.Addr == solo[0].Addr() && in.Breaker != balancer.BreakerOpen {
			t.Fatalf("solo's breaker is %s", in.Breaker)
		}
	}

	dom := browserPage(t, browser, b.router, "status-failing")
	defer func() {
		if t.Failed() {
			t.Logf("DOM:\n%s", dom)
		}
	}()
	for _, want := range []string{
		`<div id="attention" class="bad">Needs attention`,
		`<li class="problem bad">route solo: no available instance (1 with breaker open)</li>`,
		`<li class="problem bad">instance ` + solo[0].Addr() + ` of LLM@@solo: breaker open</li>`,
		`<li class="problem bad">instance ` + qwen[1].Addr() + ` of LLM@@qwen: breaker open</li>`,
		`route chat: tier shed, pinned until 2026-03-04T10:`,
		`s left) — pinned by the admin API: rack 4 maintenance &lt;b&gt;&amp;&lt;/b&gt;</li>`,
		`<li class="problem bad">route chat: error rate `,
		`data-model="quiet" data-level="ok"`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if strings.Contains(dom, "<b>&amp;</b>") {
		t.Error("the pin's reason reached the page as HTML")
	}
	// What is wrong comes first: the routes and instances in trouble above
	// the healthy ones.
	if strings.Index(dom, `data-model="quiet"`) < strings.Index(dom, `data-model="solo"`) ||
		strings.Index(dom, `data-model="quiet"`) < strings.Index(dom, `data-model="chat"`) {
		t.Error("the healthy route is listed before the failing ones")
	}
	if strings.Index(dom, `data-addr="`+qwen[1].Addr()+`"`) > strings.Index(dom, `data-addr="`+qwen[0].Addr()+`"`) {
		t.Error("the instance with its breaker open is listed after the healthy one")
	}
	// One usable instance, but its breaker is open: not available, red.
	soloRow := row(t, dom, "data-model", "solo")
	if !strings.Contains(soloRow, `class="instances bad">0 of 1<br><span class="small">1 breaker open</span>`) {
		t.Errorf("solo's instances are not shown as 0 of 1 with the breaker open")
	}
	if !strings.Contains(soloRow, `class="tier bad">cache`) {
		t.Errorf("solo's tier is not cache (every breaker open)")
	}
	chat := row(t, dom, "data-model", "chat")
	for _, want := range []string{`class="instances warn">1 of 2<br><span class="small">1 breaker open</span>`,
		`class="tier warn">shed<br><span class="pin small">pinned until 2026-03-04T10:`, `class="num errors bad">`} {
		if !strings.Contains(chat, want) {
			t.Errorf("chat row lacks %q", want)
		}
	}
	if strings.Contains(chat, `class="num errors bad">0.0 %<`) {
		t.Error("chat's error rate is 0")
	}
	// The error strip of chat's plot has a curve; the dead instance shows
	// no latency, the live one does.
	if errs := stripOf(t, chat, "errors"); !strings.Contains(errs, `class="curve"`) {
		t.Error("chat's plot has no error curve")
	}
	if strings.Count(chat, `class="curve"`) != 3 || !strings.Contains(stripOf(t, chat, "canary"), "no canary") {
		t.Error("chat's plot: want 3 curves and no canary")
	}
	dead := row(t, dom, "data-addr", solo[0].Addr())
	if !strings.Contains(dead, `data-level="bad"`) || !strings.Contains(dead, `class="state bad">breaker open<`) ||
		!strings.Contains(dead, `class="latency">–<`) {
		t.Errorf("dead instance row: want state breaker open in red and no latency")
	}
	if live := row(t, dom, "data-addr", qwen[0].Addr()); strings.Contains(live, `class="latency">–<`) {
		t.Errorf("the live instance shows no latency")
	}
	if open := row(t, dom, "data-addr", qwen[1].Addr()); !strings.Contains(open, `class="latency">–<`) {
		t.Errorf("the instance whose breaker opened shows a latency")
	}
}
