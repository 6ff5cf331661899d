package balancer_test

import (
	"errors"
	"testing"
	"time"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/balancer/internal/lbtest"
)

// TestHealthDown: three failed probes in a row take an instance out of
// rotation, panic mode included; two do not, a pass in between restarts the
// count, and a pass brings it back.
func TestHealthDown(t *testing.T) {
	f := newBreakerFixture(balancer.BreakerSettings{})
	b := f.b
	id1 := lbtest.ID(1)
	health := func() string { return breakerOf(t, b, 1).Health }
	picks := func() map[string]int {
		return lbtest.Count(t, b, &balancer.Request{Route: "chat"}, 200, ok, lbtest.ByID)
	}
	if health() != "" {
		t.Fatalf("health %q before any probe", health())
	}
	b.ReportHealth(id1, false)
	b.ReportHealth(id1, false)
	b.ReportHealth(id1, true)
	b.ReportHealth(id1, false)
	b.ReportHealth(id1, false)
	if got := picks(); health() != "up" || got[id1] == 0 {
		t.Fatalf("after 2 failures in a row: health %q, picks %v", health(), got)
	}
	b.ReportHealth(id1, false)
	if got := picks(); health() != "down" || got[id1] != 0 {
		t.Fatalf("after 3 failures in a row: health %q, picks %v", health(), got)
	}
	// Not even panic mode picks it.
	if p, err := b.Pick(only(b, "chat", 1)); !errors.Is(err, balancer.ErrNoInstance) {
		t.Fatalf("a down instance was picked: %v, %v", p.Instance, err)
	}
	b.ReportHealth(id1, true)
	if got := picks(); health() != "up" || got[id1] == 0 {
		t.Fatalf("after a pass: health %q, picks %v", health(), got)
	}
	if b.ReportHealth("nobody#1.2.3.4:5", true) {
		t.Error("a probe of an instance not in the pool was recorded")
	}
}

// TestHealthBackEndsOpenBreaker: an instance whose breaker opened while it
// was down (its attempts timed out while frozen) is probed as soon as it
// passes its health check again, not after the rest of open_timeout; if
// the probes fail, the breaker opens again for a whole open_timeout.
func TestHealthBackEndsOpenBreaker(t *testing.T) {
	f := newBreakerFixture(balancer.BreakerSettings{OpenTimeout: time.Hour, HalfOpenProbes: 1})
	b := f.b
	id1 := lbtest.ID(1)
	tripBreaker(t, b, "chat", 1, 5)
	for range 3 {
		b.ReportHealth(id1, false)
	}
	if st := breakerOf(t, b, 1); st.Breaker != balancer.BreakerOpen || st.Health != "down" {
		t.Fatalf("after the failures: breaker %s, health %q", st.Breaker, st.Health)
	}
	f.clock.Advance(time.Minute) // far from the open timeout
	b.ReportHealth(id1, true)
	if st := breakerOf(t, b, 1); st.Breaker != balancer.BreakerHalfOpen {
		t.Fatalf("back in rotation: breaker %s, want half-open", st.Breaker)
	}
	p, err := b.Pick(only(b, "chat", 1))
	if err != nil || p.Instance.ID() != id1 || b.PanicPicks("chat") != 0 {
		t.Fatalf("probe pick %v, %v (panic picks %d)", p.Instance, err, b.PanicPicks("chat"))
	}
	p.Done(failed)
	if st := breakerOf(t, b, 1); st.Breaker != balancer.BreakerOpen {
		t.Fatalf("after a failed probe: breaker %s, want open", st.Breaker)
	}
	// A pass while up (not back from down) leaves an open breaker alone.
	b.ReportHealth(id1, true)
	if st := breakerOf(t, b, 1); st.Breaker != balancer.BreakerOpen {
		t.Fatalf("a pass while up: breaker %s, want open", st.Breaker)
	}
}
