package router

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/degrade"
	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/fakeclock"
	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/testkit"
)

// tierGateway is a gateway whose requests, breakers and degrade gate run
// on a fake clock that moves only by tick: tier changes follow the steps a
// test takes, not the machine's speed.
type tierGateway struct {
	*gateway
	clk      *fakeclock.Clock
	interval time.Duration
}

func newTierGateway(t *testing.T, cfg Config, opts ...Option) *tierGateway {
	t.Helper()
	clk := fakeclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	g := &tierGateway{gateway: newGateway(t, cfg, append([]Option{WithClock(clk)}, opts...)...), clk: clk, interval: cfg.Degrade.Interval}
	g.armed()
	return g
}

// armed waits until the degrade controller has observed every route at the
// clock's time and armed its next tick, the one timer on the clock.
func (g *tierGateway) armed() {
	g.t.Helper()
	testkit.Eventually(g.t, 10*time.Second, "the degrade controller's next tick armed", func() bool { return g.clk.Pending() > 0 })
}

// tick moves the clock one degrade interval and waits for the observation
// it brings about.
func (g *tierGateway) tick() {
	g.t.Helper()
	g.clk.Advance(g.interval)
	g.armed()
}

// untilTier sends a request (driving breakers and signals) and ticks, until
// the route reaches want or maxTicks have passed; it returns the ticks taken.
func (g *tierGateway) untilTier(route string, want degrade.Tier, maxTicks int, send func(i int)) int {
	g.t.Helper()
	i := 0
	for ; g.router.Tier(route) != want; i++ {
		if i == maxTicks {
			st, _ := g.router.Degrade().Status(route)
			g.t.Fatalf("route %s at tier %v, want %v within %d ticks of %v (status %+v)", route, g.router.Tier(route), want, maxTicks, g.interval, st)
		}
		send(i)
		g.tick()
	}
	return i
}

func chatBody(prompt string) string {
	return `{"model":"chat","temperature":0.7,"messages":[{"role":"user","content":"` + prompt + `"}]}`
}

func detBody(prompt string) string {
	return `{"model":"chat","temperature":0,"messages":[{"role":"user","content":"` + prompt + `"}]}`
}

// tierTestConfig enters tiers after 200 ms (4 ticks) and leaves them after
// 600 ms (12 ticks);
// cache entries are stale at once, so that only tier 3 or a failed upstream
// may serve them.
func tierTestConfig() Config {
	return Config{
		Routes: []Route{{Model: "chat", Service: "qwen", Retries: 1}},
		Degrade: DegradeConfig{EnterAfter: 200 * time.Millisecond, ExitAfter: 600 * time.Millisecond,
			Interval: 50 * time.Millisecond, Window: time.Second, Cache: CacheConfig{FreshTTL: time.Nanosecond}},
	}
}

// TestTierThreeServesCacheByPolicy: every instance fails → breakers open →
// tier 3 → a deterministic prompt seen before comes from the cache; a
// sampled one seen before still goes upstream (the policy keeps stale
// replies to deterministic requests) → instances recover → the tier steps
// back down.
func TestTierThreeServesCacheByPolicy(t *testing.T) {
	g := newTierGateway(t, tierTestConfig(),
		WithBalancerOptions(balancer.WithBreaker(balancer.BreakerSettings{ConsecutiveFailures: 3, OpenTimeout: 300 * time.Millisecond, HalfOpenProbes: 1})))
	m := g.mocks("qwen", 2, mockllm.Config{}, nil)

	for _, body := range []string{detBody("seen before"), chatBody("sampled before")} {
		if r := g.do("POST", "/v1/chat/completions", body); r.StatusCode() != 200 {
			t.Fatal(r.StatusCode())
		}
	}
	for _, s := range m {
		s.Set(func(c *mockllm.Config) { c.FailRate, c.FailStatus = 1, 500 })
	}
	g.untilTier("chat", degrade.TierCache, 20, func(i int) {
		g.do("POST", "/v1/chat/completions", chatBody("unseen "+strconv.Itoa(i)))
	})

	r := g.do("POST", "/v1/chat/completions", detBody("seen before"))
	if r.StatusCode() != 200 || string(r.Header.Peek(degradedHeader)) != "cache" {
		t.Fatalf("deterministic prompt seen before, tier 3: %d %q %s", r.StatusCode(), r.Header.Peek(degradedHeader), r.Body())
	}
	before := m[0].Requests() + m[1].Requests()
	r = g.do("POST", "/v1/chat/completions", chatBody("sampled before"))
	if r.StatusCode() == 200 || len(r.Header.Peek(degradedHeader)) != 0 {
		t.Fatalf("sampled prompt seen before, tier 3: %d %q %s", r.StatusCode(), r.Header.Peek(degradedHeader), r.Body())
	}
	if after := m[0].Requests() + m[1].Requests(); after == before {
		t.Fatal("a sampled request in tier 3 did not reach upstream")
	}
	if g.metric(`modelgate_cache_hits_total{model="chat",kind="stale"}`) < 1 {
		t.Error("stale cache hit not counted")
	}

	for _, s := range m {
		s.Set(func(c *mockllm.Config) { c.FailRate = 0 })
	}
	g.untilTier("chat", degrade.TierNormal, 40, func(i int) {
		g.do("POST", "/v1/chat/completions", chatBody("after "+strconv.Itoa(i)))
	})
	if r := g.do("POST", "/v1/chat/completions", detBody("seen before")); r.StatusCode() != 200 || len(r.Header.Peek(degradedHeader)) != 0 {
		t.Fatalf("after recovery: %d %q", r.StatusCode(), r.Header.Peek(degradedHeader))
	}
}

// TestTierThreeStaleForAll: with stale_for: all, a sampled request seen
// before is answered from the cache in tier 3 too.
func TestTierThreeStaleForAll(t *testing.T) {
	cfg := tierTestConfig()
	cfg.Degrade.Cache.StaleFor = "all"
	g := newGateway(t, cfg)
	g.mocks("qwen", 1, mockllm.Config{}, nil)
	if r := g.do("POST", "/v1/chat/completions", chatBody("sampled before")); r.StatusCode() != 200 {
		t.Fatal(r.StatusCode())
	}
	if err := g.router.Degrade().Pin("chat", degrade.TierCache, time.Minute); err != nil {
		t.Fatal(err)
	}
	r := g.do("POST", "/v1/chat/completions", chatBody("sampled before"))
	if r.StatusCode() != 200 || string(r.Header.Peek(degradedHeader)) != "cache" {
		t.Fatalf("stale_for all, tier 3: %d %q %s", r.StatusCode(), r.Header.Peek(degradedHeader), r.Body())
	}
}

// TestTierThreeNotEnteredBeforeFirstInstance: a route started with no
// instances does not enter tier 3 (there is nothing to protect), and once an
// instance comes, its first 100 sampled requests all reach it.
func TestTierThreeNotEnteredBeforeFirstInstance(t *testing.T) {
	g := newTierGateway(t, tierTestConfig())
	r := g.do("POST", "/v1/chat/completions", chatBody("early"))
	if r.StatusCode() != 503 || !strings.Contains(string(r.Body()), "no_instance") {
		t.Fatalf("no instance yet: %d %s", r.StatusCode(), r.Body())
	}
	// Observations up to four times EnterAfter: the tier must stay normal.
	for i := range 16 {
		g.tick()
		if tier := g.router.Tier("chat"); tier != degrade.TierNormal {
			t.Fatalf("route without instances since start reached tier %v after %d ticks", tier, i+1)
		}
	}
	m := g.mocks("qwen", 1, mockllm.Config{}, nil)
	for i := range 100 {
		if r := g.do("POST", "/v1/chat/completions", chatBody("same prompt")); r.StatusCode() != 200 || len(r.Header.Peek(degradedHeader)) != 0 {
			t.Fatalf("request %d: %d %q", i, r.StatusCode(), r.Header.Peek(degradedHeader))
		}
	}
	if n := m[0].Requests(); n != 100 {
		t.Fatalf("upstream saw %d of the first 100 requests", n)
	}
}

// TestTierThreeAllDeregistered: every instance leaves → tier 3 → sampled
// requests get 503 no_instance (not a canned reply), deterministic ones
// seen before come from the cache.
func TestTierThreeAllDeregistered(t *testing.T) {
	g := newTierGateway(t, tierTestConfig())
	g.mocks("qwen", 1, mockllm.Config{}, nil)
	for _, body := range []string{detBody("seen"), chatBody("sampled seen")} {
		if r := g.do("POST", "/v1/chat/completions", body); r.StatusCode() != 200 {
			t.Fatal(r.StatusCode())
		}
	}
	g.pool.Update(discovery.ServiceKey("", "qwen"), nil)
	g.synced()
	// EnterAfter is 4 ticks: the tier follows the clock, not the requests.
	if n := g.untilTier("chat", degrade.TierCache, 20, func(int) {}); n < 4 {
		t.Fatalf("tier 3 after %d ticks, before enter_after (4 ticks)", n)
	}
	r := g.do("POST", "/v1/chat/completions", chatBody("sampled seen"))
	if r.StatusCode() != 503 || !strings.Contains(string(r.Body()), `"no_instance"`) {
		t.Fatalf("sampled, no instance: %d %s", r.StatusCode(), r.Body())
	}
	r = g.do("POST", "/v1/chat/completions", detBody("seen"))
	if r.StatusCode() != 200 || string(r.Header.Peek(degradedHeader)) != "cache" {
		t.Fatalf("deterministic seen, no instance: %d %q %s", r.StatusCode(), r.Header.Peek(degradedHeader), r.Body())
	}
	r = g.do("POST", "/v1/chat/completions", detBody("never seen"))
	if r.StatusCode() != 503 || !strings.Contains(string(r.Body()), `"no_instance"`) {
		t.Fatalf("deterministic unseen, no instance: %d %s", r.StatusCode(), r.Body())
	}
}

// TestCacheDisabledByReload: degrade.cache.disabled set by a reload takes
// effect on the next request, and so does enabling it again.
func TestCacheDisabledByReload(t *testing.T) {
	cfg := Config{Routes: []Route{{Model: "chat", Service: "qwen"}}}
	g := newGateway(t, cfg)
	m := g.mocks("qwen", 1, mockllm.Config{}, nil)
	send := func() *fasthttp.Response { return g.do("POST", "/v1/chat/completions", detBody("again")) }
	send()
	if r := send(); string(r.Header.Peek(degradedHeader)) != "cache" {
		t.Fatalf("cache on: second deterministic request not from the cache (%q)", r.Header.Peek(degradedHeader))
	}
	cfg.Degrade.Cache.Disabled = true
	if err := g.router.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	before := m[0].Requests()
	for range 3 {
		if r := send(); r.StatusCode() != 200 || len(r.Header.Peek(degradedHeader)) != 0 {
			t.Fatalf("cache off: %d %q", r.StatusCode(), r.Header.Peek(degradedHeader))
		}
	}
	if n := m[0].Requests() - before; n != 3 {
		t.Fatalf("cache off: upstream saw %d of 3 requests", n)
	}
	cfg.Degrade.Cache.Disabled = false
	if err := g.router.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	send()
	if r := send(); string(r.Header.Peek(degradedHeader)) != "cache" {
		t.Fatalf("cache on again: not from the cache (%q)", r.Header.Peek(degradedHeader))
	}
}

// TestTierOneShedsSheddableOnly: in tier 1 a sheddable route answers 503
// while a critical route is still served.
func TestTierOneShedsSheddableOnly(t *testing.T) {
	g := newGateway(t, Config{Routes: []Route{
		{Model: "batch", Service: "qwen", Criticality: degrade.Sheddable},
		{Model: "vip", Service: "qwen", Criticality: degrade.Critical},
	}})
	g.mocks("qwen", 1, mockllm.Config{}, nil)
	for _, route := range []string{"batch", "vip"} {
		if err := g.router.Degrade().Pin(route, degrade.TierShed, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	r := g.do("POST", "/v1/chat/completions", `{"model":"batch","messages":[]}`)
	if r.StatusCode() != 503 || string(r.Header.Peek(degradedHeader)) != "shed" || len(r.Header.Peek("Retry-After")) == 0 {
		t.Fatalf("sheddable route: %d %q", r.StatusCode(), r.Header.Peek(degradedHeader))
	}
	if r := g.do("POST", "/v1/chat/completions", `{"model":"vip","messages":[]}`); r.StatusCode() != 200 {
		t.Fatalf("critical route: %d %s", r.StatusCode(), r.Body())
	}
}

// slowUpstream is a model server that holds each request until released
// and records the most requests it held at once.
type slowUpstream struct {
	inFlight, peak atomic.Int64
	gate           chan struct{}
	mu             sync.Mutex
	order          []string // models, in the order their requests arrived
	arrived        chan struct{}
}

func (u *slowUpstream) handler(ctx *fasthttp.RequestCtx) {
	n := u.inFlight.Add(1)
	for p := u.peak.Load(); n > p && !u.peak.CompareAndSwap(p, n); p = u.peak.Load() {
	}
	u.mu.Lock()
	u.order = append(u.order, string(ctx.Request.Header.Peek("X-Test-Id")))
	u.mu.Unlock()
	u.arrived <- struct{}{}
	<-u.gate
	u.inFlight.Add(-1)
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`)
}

// TestTierTwoQueuesByPriority: cap 4 and 20 concurrent requests → never
// more than 4 in flight, critical before standard before sheddable, past
// the deadline 503, and every request exactly one reply.
func TestTierTwoQueuesByPriority(t *testing.T) {
	up := &slowUpstream{gate: make(chan struct{}), arrived: make(chan struct{}, 32)}
	srv := &fasthttp.Server{Handler: up.handler}
	ln, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Shutdown() }()

	g := newTierGateway(t, Config{Routes: []Route{
		{Model: "low", Service: "qwen", Criticality: degrade.Sheddable, MaxConcurrency: 4, QueueTimeout: 5 * time.Second},
		{Model: "mid", Service: "qwen", Criticality: degrade.Standard, MaxConcurrency: 4, QueueTimeout: 5 * time.Second},
		{Model: "high", Service: "qwen", Criticality: degrade.Critical, MaxConcurrency: 4, QueueTimeout: 5 * time.Second},
		{Model: "hurry", Service: "qwen", MaxConcurrency: 4, QueueTimeout: 100 * time.Millisecond},
	}})
	host, port := splitAddr(ln.Addr().String())
	g.pool.Update("LLM@@qwen", []*discovery.Instance{{Service: "qwen", Host: host, Port: port, Weight: 1, Healthy: true, Enabled: true}})
	g.synced()
	// "low" stays in tier 0 (a sheddable route in tier 2 would be shed), but
	// it shares its service's capped queue with the others.
	for _, route := range []string{"mid", "high", "hurry"} {
		if err := g.router.Degrade().Pin(route, degrade.TierCap, time.Minute); err != nil {
			t.Fatal(err)
		}
	}

	replies := make(chan int, 20)
	send := func(model, id string) {
		go func() {
			r := g.do("POST", "/v1/chat/completions", `{"model":"`+model+`","messages":[]}`, "X-Test-Id", id)
			replies <- r.StatusCode()
		}()
	}
	// Four fill the cap.
	for i := range 4 {
		send("mid", fmt.Sprintf("fill%d", i))
		<-up.arrived
	}
	// Then sixteen queue, lowest class first; the queue's order must not be
	// their arrival order. Wait until each is queued before the next.
	queued := func(n int) {
		t.Helper()
		if !testkit.Await(5*time.Second, 5*time.Millisecond, func() bool { return queueOf(g.gateway, "mid").Queued >= n }) {
			t.Fatalf("%d requests queued, want %d", queueOf(g.gateway, "mid").Queued, n)
		}
	}
	n := 0
	for _, batch := range []struct{ model, id string }{{"low", "low"}, {"mid", "mid"}, {"high", "high"}} {
		for i := range 5 {
			send(batch.model, fmt.Sprintf("%s%d", batch.id, i))
			n++
			queued(n)
		}
	}
	send("hurry", "hurry")
	queued(n + 1)
	g.clk.Advance(100 * time.Millisecond) // its deadline passes while the queue is full; the others' do not
	timedOut := <-replies
	if timedOut != 503 {
		t.Fatalf("request past its queue deadline got %d, want 503", timedOut)
	}

	// Release one at a time and watch the arrival order.
	for i := range 4 + 15 {
		up.gate <- struct{}{}
		if i >= 15 {
			continue // the last four release what is already in
		}
		select {
		case <-up.arrived:
		case <-time.After(5 * time.Second):
			t.Fatalf("release %d: no queued request came in; limiter %+v", i, queueOf(g.gateway, "mid"))
		}
	}
	for range 19 {
		if code := <-replies; code != 200 {
			t.Errorf("queued request got %d", code)
		}
	}
	select {
	case code := <-replies:
		t.Fatalf("an extra reply (%d): some request was answered twice", code)
	default:
	}
	if p := up.peak.Load(); p > 4 {
		t.Fatalf("%d requests in flight at once, cap 4", p)
	}
	up.mu.Lock()
	order := up.order[4:]
	up.mu.Unlock()
	class := map[byte]int{'h': 0, 'm': 1, 'l': 2}
	for i := 1; i < len(order); i++ {
		if class[order[i][0]] < class[order[i-1][0]] {
			t.Fatalf("served out of priority order: %v", order)
		}
	}
	if g.metric(`modelgate_queue_wait_seconds_count{model="high"}`) != 5 {
		t.Errorf("queue wait not recorded")
	}
}

// TestConsumerTokenQuota: TPM 1,000, default_max_tokens 300 and 300-token
// replies → the fourth
// request in the minute gets 429 with Retry-After.
func TestConsumerTokenQuota(t *testing.T) {
	key := "sk-quota"
	g := newGateway(t, Config{
		Routes:    []Route{{Model: "chat", Service: "qwen", DefaultMaxTokens: 300}},
		Consumers: []Consumer{{Name: "team", KeySHA256: sha256Hex(key), TPM: 1000}},
	})
	g.mocks("qwen", 1, mockllm.Config{ReplyWords: 300}, nil)
	auth := []string{"Authorization", "Bearer " + key}
	for i := range 3 {
		if r := g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`, auth...); r.StatusCode() != 200 {
			t.Fatalf("request %d: %d %s", i+1, r.StatusCode(), r.Body())
		}
	}
	r := g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`, auth...)
	ra, _ := strconv.Atoi(string(r.Header.Peek("Retry-After")))
	if r.StatusCode() != 429 || ra <= 0 {
		t.Fatalf("fourth request: %d Retry-After %q: %s", r.StatusCode(), r.Header.Peek("Retry-After"), r.Body())
	}
}

func queueOf(g *gateway, route string) degrade.LimiterStats {
	st, _ := g.router.Degrade().QueueStats(route)
	return st
}
