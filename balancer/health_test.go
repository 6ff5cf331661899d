package balancer_test

import (
	"errors"
	"testing"

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
