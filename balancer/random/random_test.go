package random_test

import (
	"testing"
	"time"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/balancer/internal/lbtest"
	"github.com/modelgate/modelgate/balancer/random"
)

func TestWeightsAmongAvailable(t *testing.T) {
	b := balancer.New(lbtest.Pool(lbtest.Inst(1, 6), lbtest.Inst(2, 3), lbtest.Inst(3, 1)), nil,
		balancer.WithPolicy(random.New()), balancer.WithRand(lbtest.Rand(13)))
	const n = 20000
	ok := balancer.Result{Status: 200, Latency: time.Millisecond}
	got := lbtest.Count(t, b, &balancer.Request{Service: lbtest.Key}, n, ok, lbtest.ByID)
	lbtest.Share(t, "weight 6", got[lbtest.ID(1)], n, 0.6, 0.02)
	lbtest.Share(t, "weight 1", got[lbtest.ID(3)], n, 0.1, 0.02)

	// The heaviest excluded: its draws are redrawn among the others.
	got = lbtest.Count(t, b, &balancer.Request{Service: lbtest.Key, Exclude: []string{lbtest.ID(1)}}, n, ok, lbtest.ByID)
	if got[lbtest.ID(1)] != 0 {
		t.Errorf("excluded instance picked %d times", got[lbtest.ID(1)])
	}
	lbtest.Share(t, "weight 3 of 4", got[lbtest.ID(2)], n, 0.75, 0.02)
}
