package wrr_test

import (
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/balancer/internal/lbtest"
	"github.com/modelgate/modelgate/balancer/wrr"
)

var ok = balancer.Result{Status: 200, Latency: time.Millisecond}

func TestSmoothOrder(t *testing.T) {
	b := balancer.New(lbtest.Pool(lbtest.Inst(1, 5), lbtest.Inst(2, 1), lbtest.Inst(3, 1)), nil, balancer.WithPolicy(wrr.New()))
	var seq strings.Builder
	for range 14 {
		p, err := b.Pick(&balancer.Request{Service: lbtest.Key})
		if err != nil {
			t.Fatal(err)
		}
		seq.WriteString(p.Instance.Host[len("10.0.0."):])
		p.Done(ok)
	}
	// nginx's smooth weighted round-robin for 5:1:1, twice.
	if got, want := seq.String(), "11213111121311"; got != want {
		t.Errorf("order %s, want %s", got, want)
	}
}

func TestSkipsUnavailable(t *testing.T) {
	b := balancer.New(lbtest.Pool(lbtest.Inst(1, 3), lbtest.Inst(2, 2), lbtest.Inst(3, 1)), nil, balancer.WithPolicy(wrr.New()))
	req := &balancer.Request{Service: lbtest.Key, Exclude: []string{lbtest.ID(1)}}
	got := lbtest.Count(t, b, req, 3000, ok, lbtest.ByID)
	if got[lbtest.ID(1)] != 0 || got[lbtest.ID(2)] != 2000 || got[lbtest.ID(3)] != 1000 {
		t.Errorf("picks %v, want 2000 and 1000 on instances 2 and 3", got)
	}
}
