package balancer

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestCmpScore(t *testing.T) {
	e := newEnv()
	e.epoch = e.now()
	bs := BreakerSettings{}.withDefaults()
	nodes := make([]node, 64)
	for i := range nodes {
		id := fmt.Sprint("i", i)
		nodes[i] = node{st: newStats(id, uint32(i+1), e, &bs), id: id, weight: 1, inv: 1}
		nodes[i].st.inflight.Store(2)
	}
	s := &engineSelector{s: EngineSettings{}.WithDefaults()}
	c := Candidates{nodes: nodes, req: &Request{}, env: e, level: levelStrict}
	now := e.clock()
	fs := []func() int{func() int { return s.score(&c, 5, 32, 32, now) }}
	res := make([][]float64, 1)
	for r := 0; r < 300; r++ {
		for k, f := range fs {
			st := time.Now()
			for i := 0; i < 1000; i++ {
				f()
			}
			res[k] = append(res[k], float64(time.Since(st).Nanoseconds())/1000)
		}
	}
	for k := range fs {
		v := res[k]
		slices.Sort(v)
		fmt.Printf("%d min %.0f p10 %.0f med %.0f\n", k, v[0], v[len(v)/10], v[len(v)/2])
	}
}
