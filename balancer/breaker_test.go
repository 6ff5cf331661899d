package balancer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/balancer/internal/lbtest"
)

var failed = balancer.Result{Status: 503, Latency: time.Millisecond, Err: errors.New("upstream 503")}

// only returns a request for route that can pick only instance n of the
// pool's.
func only(b *balancer.Balancer, route string, n int) *balancer.Request {
	req := &balancer.Request{Route: route}
	for _, st := range b.Instances() {
		if st.ID != lbtest.ID(n) {
			req.Exclude = append(req.Exclude, st.ID)
		}
	}
	return req
}

// report picks instance n of route and reports res, count times.
func report(t *testing.T, b *balancer.Balancer, route string, n, count int, res balancer.Result) {
	t.Helper()
	req := only(b, route, n)
	for range count {
		p, err := b.Pick(req)
		if err != nil || p.Instance.ID() != lbtest.ID(n) {
			t.Fatalf("pick = %v, %v; want instance %d", p.Instance, err, n)
		}
		p.Done(res)
	}
}

// tripBreaker reports count failures on instance n.
func tripBreaker(t *testing.T, b *balancer.Balancer, route string, n, count int) {
	t.Helper()
	report(t, b, route, n, count, failed)
}

func breakerOf(t *testing.T, b *balancer.Balancer, n int) balancer.InstanceStat {
	t.Helper()
	for _, st := range b.Instances() {
		if st.ID == lbtest.ID(n) {
			return st
		}
	}
	t.Fatalf("instance %d not in the pool", n)
	return balancer.InstanceStat{}
}

// recorder collects OnBreakerChange calls.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) change(id, from, to string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, fmt.Sprintf("%s %s>%s", id[strings.IndexByte(id, '#')+1:], from, to))
}

func (r *recorder) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.Join(r.got, ",")
	r.got = nil
	return s
}

type breakerFixture struct {
	b     *balancer.Balancer
	clock *lbtest.Clock
	rec   *recorder
	log   *bytes.Buffer
}

func newBreakerFixture(s balancer.BreakerSettings) *breakerFixture {
	f := &breakerFixture{clock: lbtest.NewClock(), rec: &recorder{}, log: &bytes.Buffer{}}
	pool := lbtest.Pool(lbtest.Inst(1, 1), lbtest.Inst(2, 1))
	f.b = balancer.New(pool, chat(nil), balancer.WithClock(f.clock.Now), balancer.WithBreaker(s),
		balancer.WithRand(lbtest.Rand(8)), balancer.OnBreakerChange(f.rec.change),
		balancer.WithLogger(zerolog.New(f.log)))
	return f
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	f := newBreakerFixture(balancer.BreakerSettings{})
	b := f.b
	tripBreaker(t, b, "chat", 1, 4)
	if st := breakerOf(t, b, 1); st.Breaker != "closed" || st.Failures != 4 {
		t.Fatalf("after 4 failures: %+v", st)
	}
	tripBreaker(t, b, "chat", 1, 1)
	if st := breakerOf(t, b, 1); st.Breaker != "open" {
		t.Fatalf("after 5 failures: breaker %s", st.Breaker)
	}
	if got := f.rec.take(); got != "10.0.0.1:8000 closed>open" {
		t.Errorf("transitions = %q", got)
	}
	if got := lbtest.Count(t, b, &balancer.Request{Route: "chat"}, 200, ok, lbtest.ByID); got[lbtest.ID(2)] != 200 {
		t.Errorf("open instance picked: %v", got)
	}

	// Still open just before the timeout: the only way to it is panic mode,
	// whose results do not count.
	f.clock.Advance(10*time.Second - time.Millisecond)
	report(t, b, "chat", 1, 5, ok)
	if st := breakerOf(t, b, 1); st.Breaker != "open" || b.PanicPicks("chat") != 5 {
		t.Fatalf("before the timeout: breaker %s, panic picks %d", st.Breaker, b.PanicPicks("chat"))
	}

	// Past the timeout: three probes at once, the fourth pick panics.
	f.clock.Advance(time.Millisecond)
	if st := breakerOf(t, b, 1); st.Breaker != "half-open" {
		t.Fatalf("after the timeout: breaker %s", st.Breaker)
	}
	req := only(b, "chat", 1)
	var probes []balancer.Picked
	for range 4 {
		p, err := b.Pick(req)
		if err != nil {
			t.Fatal(err)
		}
		probes = append(probes, p)
	}
	if n := b.PanicPicks("chat"); n != 6 {
		t.Errorf("panic picks = %d, want 6 (the fourth probe)", n)
	}
	for _, p := range probes {
		p.Done(ok)
	}
	if st := breakerOf(t, b, 1); st.Breaker != "closed" {
		t.Fatalf("after 3 successful probes: breaker %s", st.Breaker)
	}
	if got := f.rec.take(); got != "10.0.0.1:8000 open>half-open,10.0.0.1:8000 half-open>closed" {
		t.Errorf("transitions = %q", got)
	}

	// A failed probe opens it again, for a whole timeout from then.
	tripBreaker(t, b, "chat", 1, 5)
	f.clock.Advance(10 * time.Second)
	tripBreaker(t, b, "chat", 1, 1)
	f.clock.Advance(5 * time.Second)
	if st := breakerOf(t, b, 1); st.Breaker != "open" {
		t.Fatalf("after a failed probe: breaker %s", st.Breaker)
	}
	if got := f.rec.take(); got != "10.0.0.1:8000 closed>open,10.0.0.1:8000 open>half-open,10.0.0.1:8000 half-open>open" {
		t.Errorf("transitions = %q", got)
	}
	if n := strings.Count(f.log.String(), "breaker state changed"); n != 6 {
		t.Errorf("%d transitions logged, want 6:\n%s", n, f.log)
	}
}

func TestBreakerOutcomes(t *testing.T) {
	tests := []struct {
		name  string
		res   balancer.Result
		trips bool
	}{
		{"canceled flag", balancer.Result{Canceled: true, Err: errors.New("client gone")}, false},
		{"context canceled", balancer.Result{Err: fmt.Errorf("read: %w", context.Canceled)}, false},
		{"400", balancer.Result{Status: 400, Err: errors.New("bad request")}, false},
		{"404", balancer.Result{Status: 404}, false},
		{"200", ok, false},
		{"429", balancer.Result{Status: 429}, true},
		{"500", balancer.Result{Status: 500}, true},
		{"transport error", balancer.Result{Err: errors.New("connection refused")}, true},
		{"deadline", balancer.Result{Err: context.DeadlineExceeded}, true},
		{"stream broke", balancer.Result{Status: 200, Err: errors.New("unexpected EOF")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBreakerFixture(balancer.BreakerSettings{}).b
			report(t, b, "chat", 1, 10, tt.res)
			st := breakerOf(t, b, 1)
			if got := st.Breaker == "open"; got != tt.trips {
				t.Errorf("breaker %s after 10 results, want open = %v", st.Breaker, tt.trips)
			}
			if got := st.Failures > 0; got != tt.trips {
				t.Errorf("failures = %d", st.Failures)
			}
		})
	}
}

func TestBreakerErrorRatio(t *testing.T) {
	b := newBreakerFixture(balancer.BreakerSettings{ConsecutiveFailures: 100}).b
	for range 10 { // 50 % failures, never two in a row
		tripBreaker(t, b, "chat", 1, 1)
		report(t, b, "chat", 1, 1, ok)
	}
	if st := breakerOf(t, b, 1); st.Breaker != "closed" {
		t.Fatalf("after 20 results: breaker %s", st.Breaker)
	}
	tripBreaker(t, b, "chat", 1, 1)
	if st := breakerOf(t, b, 1); st.Breaker != "open" {
		t.Fatalf("11 failures in 21 results: breaker %s", st.Breaker)
	}
}

func TestBreakerDropsResultsOfOlderGenerations(t *testing.T) {
	b := newBreakerFixture(balancer.BreakerSettings{ConsecutiveFailures: 2, HalfOpenProbes: 1}).b
	held, err := b.Pick(only(b, "chat", 1))
	if err != nil {
		t.Fatal(err)
	}
	tripBreaker(t, b, "chat", 1, 2)
	held.Done(ok) // picked while closed; the breaker has opened since
	if st := breakerOf(t, b, 1); st.Breaker != "open" {
		t.Fatalf("a stale success changed the breaker: %s", st.Breaker)
	}
}

func TestPanicModePicksLeastBad(t *testing.T) {
	f := newBreakerFixture(balancer.BreakerSettings{})
	tripBreaker(t, f.b, "chat", 2, 5)
	f.clock.Advance(time.Second)
	tripBreaker(t, f.b, "chat", 1, 5)
	got := lbtest.Count(t, f.b, &balancer.Request{Route: "chat"}, 50, failed, lbtest.ByID)
	if got[lbtest.ID(2)] != 50 {
		t.Errorf("panic picks went to %v, want all to instance 2 (open the longest)", got)
	}
	if n := f.b.PanicPicks("chat"); n != 50 {
		t.Errorf("PanicPicks = %d, want 50", n)
	}
	if n := f.b.PanicPicks("unknown"); n != 0 {
		t.Errorf("PanicPicks(unknown) = %d", n)
	}
	// Panic results do not extend the open period.
	f.clock.Advance(9 * time.Second)
	if st := breakerOf(t, f.b, 2); st.Breaker != "half-open" {
		t.Errorf("instance 2 after its timeout: %s", st.Breaker)
	}
}

// TestBreakerSlowConsecutiveFailures reports failures further apart than
// the rolling window holds: five in a row still open the breaker, and a
// success in between starts the count again. The window runs on the wall
// clock (gobreaker's), so the test waits it out for real, briefly.
func TestBreakerSlowConsecutiveFailures(t *testing.T) {
	const window = 100 * time.Millisecond
	f := newBreakerFixture(balancer.BreakerSettings{Window: window, FailureRatio: -1})
	b := f.b
	slow := func(n int, res balancer.Result) {
		for range n {
			time.Sleep(window + window/5) // the previous result left the window
			report(t, b, "chat", 1, 1, res)
		}
	}
	slow(4, failed)
	slow(1, ok)
	slow(4, failed)
	if st := breakerOf(t, b, 1); st.Breaker != "closed" {
		t.Fatalf("4 slow failures after a success: breaker %s", st.Breaker)
	}
	slow(1, failed)
	if st := breakerOf(t, b, 1); st.Breaker != "open" {
		t.Fatalf("5 slow failures in a row: breaker %s", st.Breaker)
	}
}

// TestRouteBreakerSettings: a route's breaker settings rule its service's
// instances over the balancer's; SetRoutes with other settings restarts
// them closed under the new ones; routes of one service must agree.
func TestRouteBreakerSettings(t *testing.T) {
	clock := lbtest.NewClock()
	rec := &recorder{}
	pool := lbtest.Pool(lbtest.Inst(1, 1), lbtest.Inst(2, 1))
	strict := &balancer.BreakerSettings{ConsecutiveFailures: 2, OpenTimeout: time.Minute}
	route := func(s *balancer.BreakerSettings) []balancer.Route {
		return []balancer.Route{{Name: "chat", Service: lbtest.Service, Breaker: s}}
	}
	b := balancer.New(pool, route(strict), balancer.WithClock(clock.Now), balancer.WithBreaker(balancer.BreakerSettings{ConsecutiveFailures: 50, FailureRatio: -1}),
		balancer.OnBreakerChange(rec.change))
	tripBreaker(t, b, "chat", 1, 2)
	if st := breakerOf(t, b, 1); st.Breaker != balancer.BreakerOpen {
		t.Fatalf("after 2 failures with consecutive_failures 2: %s", st.Breaker)
	}
	clock.Advance(30 * time.Second) // the route's open_timeout is a minute, not the default 10s
	if st := breakerOf(t, b, 1); st.Breaker != balancer.BreakerOpen {
		t.Fatalf("30s after opening with open_timeout 1m: %s", st.Breaker)
	}

	// Same settings again (defaults filled or not): nothing restarts.
	same := *strict
	same.HalfOpenProbes = 3
	if err := b.SetRoutes(route(&same)); err != nil {
		t.Fatal(err)
	}
	if st := breakerOf(t, b, 1); st.Breaker != balancer.BreakerOpen {
		t.Fatalf("equal settings restarted the breaker: %s", st.Breaker)
	}
	// New settings: closed at once, and 2 failures no longer trip it.
	if err := b.SetRoutes(route(&balancer.BreakerSettings{ConsecutiveFailures: 4})); err != nil {
		t.Fatal(err)
	}
	if st := breakerOf(t, b, 1); st.Breaker != balancer.BreakerClosed {
		t.Fatalf("after new settings: %s", st.Breaker)
	}
	tripBreaker(t, b, "chat", 1, 3)
	if st := breakerOf(t, b, 1); st.Breaker != balancer.BreakerClosed {
		t.Fatalf("3 failures with consecutive_failures 4: %s", st.Breaker)
	}
	tripBreaker(t, b, "chat", 1, 1)
	if st := breakerOf(t, b, 1); st.Breaker != balancer.BreakerOpen {
		t.Fatalf("4 failures with consecutive_failures 4: %s", st.Breaker)
	}
	// No route setting: the balancer's (50 in a row, no ratio rule).
	if err := b.SetRoutes(route(nil)); err != nil {
		t.Fatal(err)
	}
	tripBreaker(t, b, "chat", 2, 49)
	if st := breakerOf(t, b, 2); st.Breaker != balancer.BreakerClosed {
		t.Fatalf("49 failures under the balancer's 50: %s", st.Breaker)
	}
	if got := rec.take(); got != "10.0.0.1:8000 closed>open,10.0.0.1:8000 open>closed,10.0.0.1:8000 closed>open,10.0.0.1:8000 open>closed" {
		t.Errorf("transitions = %q", got)
	}

	two := []balancer.Route{{Name: "a", Service: lbtest.Service, Breaker: strict}, {Name: "b", Service: lbtest.Service, Breaker: &balancer.BreakerSettings{ConsecutiveFailures: 9}}}
	if err := b.SetRoutes(two); err == nil || !strings.Contains(err.Error(), `route "b": breaker differs from route "a"'s`) {
		t.Errorf("disagreeing routes of one service: %v", err)
	}
	two[1].Breaker = nil // one sets it, the other inherits: fine
	if err := b.SetRoutes(two); err != nil {
		t.Errorf("one route with a breaker: %v", err)
	}
	if err := balancer.ValidateRoutes(route(&balancer.BreakerSettings{FailureRatio: 1.5})); err == nil {
		t.Error("failure ratio 1.5 accepted")
	}
}
