package router

import (
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/fakeclock"
	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/testkit"
)

var h0 = time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)

// counters builds readings for one route "chat" on service "svc" with two
// instances, v1 and v2, whose counters the test moves.
type counters struct {
	requests, errors, tokens uint64
	ttft                     time.Duration
	v1, v2                   instanceReading
	canary                   string
	share                    float64
}

func (c *counters) at(t time.Time) reading {
	return reading{at: t,
		routes: map[string]routeReading{"chat": {service: "svc", requests: c.requests, errors: c.errors, tokens: c.tokens,
			ttftP95: c.ttft, canary: c.canary, canaryShare: c.share}},
		instances: map[string]instanceReading{"a": c.v1, "b": c.v2}}
}

func TestHistoryPoints(t *testing.T) {
	h := newHistory(10*time.Second, time.Minute)
	c := &counters{requests: 100, errors: 5, tokens: 1000, v1: instanceReading{service: "svc", version: "v1", finished: 50},
		v2: instanceReading{service: "svc", version: "v2", finished: 50}}
	h.add(c.at(h0))
	if pts := h.points("chat"); len(pts) != 0 {
		t.Fatalf("the first reading is a baseline, got points %+v", pts)
	}
	// 10 s later: 20 requests, 2 errors, 300 tokens; v1 got 15 attempts and
	// v2 (the canary at 25 %) got 5, 3 of them failures.
	c.requests, c.errors, c.tokens, c.ttft = 120, 7, 1300, 250*time.Millisecond
	c.v1.finished, c.v2.finished, c.v2.failures = 65, 55, 3
	c.canary, c.share = "v2", 25
	h.add(c.at(h0.Add(10 * time.Second)))
	pts := h.points("chat")
	if len(pts) != 1 {
		t.Fatalf("points %+v", pts)
	}
	p := pts[0]
	if p.secs != 10 || p.requests != 20 || p.errors != 2 || p.tokens != 300 || p.ttftP95 != 250*time.Millisecond ||
		p.versions["v1"] != 15 || p.versions["v2"] != 5 || p.canaryShare != 25 || p.canaryActual != 25 {
		t.Fatalf("point %+v", p)
	}
	if tr := h.track("b"); !tr.lastSuccess.Equal(p.at) || !tr.lastFailure.Equal(p.at) {
		t.Errorf("instance b had successes and failures: %+v", tr)
	}

	// A reading less than half an interval after the last is ignored; a
	// counter that went back (recreated) counts from zero.
	c.requests = 1000
	h.add(c.at(h0.Add(10 * time.Second)))
	h.add(c.at(h0.Add(14 * time.Second)))
	c.requests = 4
	c.v2.failures = 5 // two more failures, no success
	h.add(c.at(h0.Add(20 * time.Second)))
	pts = h.points("chat")
	if len(pts) != 2 || pts[1].requests != 4 {
		t.Fatalf("after a reset: %+v", pts)
	}
	if tr := h.track("b"); !tr.lastFailure.After(tr.lastSuccess) {
		t.Errorf("instance b only failed last: %+v", tr)
	}
	if tr := h.track("a"); !tr.lastSuccess.Equal(h0.Add(10 * time.Second)) {
		t.Errorf("instance a, idle since its success at 10s: %+v", tr)
	}

	// The ring keeps span/every points, oldest first, contiguous.
	for i := 3; i < 20; i++ {
		c.requests += 10
		h.add(c.at(h0.Add(time.Duration(i) * 10 * time.Second)))
	}
	pts = h.points("chat")
	if len(pts) != 6 {
		t.Fatalf("%d points, want 6", len(pts))
	}
	for i, p := range pts {
		if want := h0.Add(time.Duration(14+i) * 10 * time.Second); !p.at.Equal(want) || p.requests != 10 {
			t.Fatalf("point %d: %v %d requests, want %v 10", i, p.at, p.requests, want)
		}
	}

	// Routes and instances gone from a reading are forgotten.
	h.add(reading{at: h0.Add(time.Hour)})
	if len(h.points("chat")) != 0 || !h.track("a").lastSuccess.IsZero() || len(h.instances) != 0 {
		t.Fatalf("gone route or instance kept: %d points, %d instances", len(h.points("chat")), len(h.instances))
	}
}

func TestSummarize(t *testing.T) {
	if s := summarize(nil, time.Minute); s.ErrorRatio != -1 || s.secs != 0 || s.Split != nil {
		t.Fatalf("no points: %+v", s)
	}
	var pts []point
	for i := range 12 { // two minutes: the first one idle, the second busy
		p := point{at: h0.Add(time.Duration(i+1) * 10 * time.Second), secs: 10, ttftP95: time.Duration(i) * time.Millisecond}
		if i >= 6 {
			p.requests, p.errors, p.tokens = 100, 10, 500
			p.versions = map[string]uint64{"v1": 90, "v2": 10}
		}
		pts = append(pts, p)
	}
	s := summarize(pts, time.Minute)
	if s.secs != 60 || s.ReqPerSec != 10 || s.ErrorRatio != 0.1 || s.TokensPerSec != 50 || s.TTFTP95 != 11*time.Millisecond ||
		s.Split["v1"] != 90 || s.Split["v2"] != 10 {
		t.Fatalf("summary %+v", s)
	}
}

// TestRouterSamplesOnItsClock checks that Run samples the status page's
// history at once and then once per 10 s of its sampling clock (a fake one
// here, which only the test moves), stamping readings with the router's
// time.
func TestRouterSamplesOnItsClock(t *testing.T) {
	clk := fakeclock.New(h0)
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen"}}},
		func(r *Router) { r.sampleClock, r.now = clk, clk.Now })
	g.mocks("qwen", 1, mockllm.Config{}, nil)
	testkit.Eventually(t, 5*time.Second, "the first reading", func() bool {
		g.router.history.mu.Lock()
		defer g.router.history.mu.Unlock()
		return g.router.history.prev != nil
	})
	for range 3 {
		if r := g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[]}`); r.StatusCode() != 200 {
			t.Fatal(r.StatusCode())
		}
	}
	clk.Advance(9 * time.Second)
	if pts := g.router.history.points("chat"); len(pts) != 0 {
		t.Fatalf("sampled before 10 s: %+v", pts)
	}
	clk.Advance(time.Second)
	testkit.Eventually(t, 5*time.Second, "a point 10 s later", func() bool { return len(g.router.history.points("chat")) == 1 })
	p := g.router.history.points("chat")[0]
	if !p.at.Equal(h0.Add(10*time.Second)) || p.secs != 10 || p.requests != 3 || p.errors != 0 || p.tokens == 0 {
		t.Fatalf("point %+v", p)
	}
}

// TestHistoryLatencyFromSuccesses checks that an instance's latency is the
// balancer's average at the end of an interval whose attempts all
// succeeded, and that intervals with failures (which feed the average a
// penalty, or are all it has) leave it alone.
func TestHistoryLatencyFromSuccesses(t *testing.T) {
	h := newHistory(10*time.Second, time.Minute)
	in := instanceReading{service: "svc", version: "v1"}
	add := func(i int, finished, failures uint64, ewma time.Duration) instanceTrack {
		in.finished, in.failures, in.ewma = finished, failures, ewma
		h.add(reading{at: h0.Add(time.Duration(i) * 10 * time.Second), instances: map[string]instanceReading{"a": in}})
		return h.track("a")
	}
	add(0, 0, 0, 0)
	if tr := add(1, 3, 3, 2*time.Millisecond); tr.latency != 0 || !tr.lastSuccess.IsZero() {
		t.Fatalf("only failures (fast ones): %+v", tr) // a dead instance must not look fast
	}
	if tr := add(2, 8, 3, 40*time.Millisecond); tr.latency != 40*time.Millisecond {
		t.Fatalf("a clean interval: %+v", tr)
	}
	if tr := add(3, 12, 5, 90*time.Millisecond); tr.latency != 40*time.Millisecond || !tr.lastFailure.Equal(tr.lastSuccess) {
		t.Fatalf("an interval with failures moved the latency: %+v", tr)
	}
	if tr := add(4, 20, 5, 50*time.Millisecond); tr.latency != 50*time.Millisecond {
		t.Fatalf("the next clean interval: %+v", tr)
	}
}
