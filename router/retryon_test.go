package router

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/internal/mockllm"
)

// TestRetryOnStatuses: retry_on says which statuses go on to the fallback
// route; others are relayed as they are. It applies on reload.
func TestRetryOnStatuses(t *testing.T) {
	cfg := Config{Routes: []Route{{Model: "chat", Service: "bad", Fallback: []string{"good"}}, {Model: "good"}}}
	g := newGateway(t, cfg)
	bad := g.mocks("bad", 1, mockllm.Config{FailRate: 1, FailStatus: 503}, nil)[0]
	g.mocks("good", 1, mockllm.Config{}, nil)
	send := func() (int, string) {
		resp := g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[]}`)
		return resp.StatusCode(), string(resp.Header.Peek("X-Mock-Instance"))
	}
	steps := []struct {
		retryOn    []int
		failStatus int
		status     int
		from       string
	}{
		{nil, 503, 200, "good-0"},        // default: 5xx and 429
		{[]int{429}, 503, 503, "bad-0"},  // 503 not listed: relayed
		{[]int{429}, 429, 200, "good-0"}, // 429 listed
		{[]int{}, 429, 429, "bad-0"},     // empty: no status retried
		{[]int{404, 503}, 404, 200, "good-0"},
	}
	for _, st := range steps {
		cfg.Routes[0].RetryOn = st.retryOn
		if err := g.router.Reload(cfg); err != nil {
			t.Fatal(err)
		}
		bad.Set(func(c *mockllm.Config) { c.FailStatus = st.failStatus })
		if status, from := send(); status != st.status || from != st.from {
			t.Errorf("retry_on %v, upstream %d: %d from %s, want %d from %s", st.retryOn, st.failStatus, status, from, st.status, st.from)
		}
	}
	for _, bad := range [][]int{{200}, {600}, {399}} {
		c := Config{Routes: []Route{{Model: "a", RetryOn: bad}}}
		if err := c.Validate(); err == nil {
			t.Errorf("retry_on %v accepted", bad)
		}
	}
}

// TestRouteBreaker: a route's breaker settings reach its instances, and a
// reload with others restarts them.
func TestRouteBreaker(t *testing.T) {
	cfg := Config{Routes: []Route{{Model: "chat", Service: "qwen",
		Breaker: &balancer.BreakerSettings{ConsecutiveFailures: 2, OpenTimeout: time.Hour}}}}
	g := newGateway(t, cfg)
	g.mocks("qwen", 1, mockllm.Config{FailRate: 1, FailStatus: 503}, nil)
	state := func() balancer.BreakerState { return g.router.Balancer().Instances()[0].Breaker }
	for range 2 {
		g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[]}`)
	}
	if s := state(); s != balancer.BreakerOpen {
		t.Fatalf("2 failures with consecutive_failures 2: %s", s)
	}
	cfg.Routes[0].Breaker = &balancer.BreakerSettings{ConsecutiveFailures: 3}
	if err := g.router.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if s := state(); s != balancer.BreakerClosed {
		t.Fatalf("after a reload with new settings: %s", s)
	}
	for range 2 {
		g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[]}`)
	}
	if s := state(); s != balancer.BreakerClosed {
		t.Fatalf("2 failures with consecutive_failures 3: %s", s)
	}

	bad := []struct {
		name string
		cfg  Config
		want string
	}{
		{"ratio", Config{Routes: []Route{{Model: "a", Breaker: &balancer.BreakerSettings{FailureRatio: 2}}}}, "routes[0].breaker.failure_ratio"},
		{"access log sample not a number", Config{AccessLog: AccessLogConfig{Sample: math.NaN()}}, "access_log.sample: NaN"},
		{"access log sample above 1", Config{AccessLog: AccessLogConfig{Sample: 1.5}}, "access_log.sample: 1.5"},
		{"ratio not a number", Config{Routes: []Route{{Model: "a", Breaker: &balancer.BreakerSettings{FailureRatio: math.NaN()}}}}, "routes[0].breaker.failure_ratio: NaN"},
		{"window", Config{Routes: []Route{{Model: "a", Breaker: &balancer.BreakerSettings{Window: -time.Second}}}}, "routes[0].breaker.window"},
		{"open timeout", Config{Routes: []Route{{Model: "a", Breaker: &balancer.BreakerSettings{OpenTimeout: -1}}}}, "routes[0].breaker.open_timeout"},
		{"two routes of a service", Config{Routes: []Route{{Model: "a", Service: "s", Breaker: &balancer.BreakerSettings{ConsecutiveFailures: 2}},
			{Model: "b", Service: "s", Breaker: &balancer.BreakerSettings{ConsecutiveFailures: 3}}}}, "routes[1].breaker: differs from routes[0]'s"},
	}
	for _, tt := range bad {
		if err := tt.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}
