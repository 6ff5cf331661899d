package balancer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
)

// refScore is the engine selector's scoring as first written: every
// available candidate scored in full, in a random rotation, the first
// best winning a tie unless home ties.
func refScore(s *engineSelector, c *Candidates, home, depth, k int, now int64) int {
	n := len(c.nodes)
	var (
		load          [maxScored]float64
		sumLoad, sumW float64
		minLat        = int64(math.MaxInt64)
		avail         int
	)
	for i := range n {
		if !c.availableAny(i) { // the general rule, not the inline one
			load[i] = -1
			continue
		}
		nd := &c.nodes[i]
		l := float64(nd.st.load(c.env, now))
		sumLoad += l
		sumW += nd.weight
		load[i] = l * nd.inv
		if lat := nd.st.ewma.Load(); lat > 0 {
			minLat = min(minLat, lat)
		}
		avail++
	}
	if avail == 0 {
		return -1
	}
	capacity := math.Ceil(s.s.LoadFactor * (sumLoad + 1) / sumW)
	rot := int(c.env.rand() % uint64(n))
	var bestScore, bestAny float64
	bestPrefix, bestLoad := -1, -1
	for j := range n {
		i := (j + rot) % n
		if load[i] < 0 {
			continue
		}
		score := s.s.Queue / (1 + load[i])
		if i == home {
			score += s.s.Prefix * float64(depth) / float64(k)
		}
		if lat := c.nodes[i].st.ewma.Load(); lat <= 0 || minLat == math.MaxInt64 || 2*lat <= 3*minLat {
			score += s.s.Latency
		} else {
			score += s.s.Latency * float64(minLat) / float64(lat)
		}
		if bestLoad < 0 || score > bestAny || (score == bestAny && i == home) {
			bestLoad, bestAny = i, score
		}
		if load[i]+c.nodes[i].inv <= capacity && (bestPrefix < 0 || score > bestScore || (score == bestScore && i == home)) {
			bestPrefix, bestScore = i, score
		}
	}
	if bestPrefix < 0 {
		return bestLoad
	}
	return bestPrefix
}

// The scoring that compares most candidates by load alone, testing
// availability inline, picks exactly what scoring every candidate in full
// by the general availability rule picks, over random pools: weights, loads
// (in-flight and engine), latencies, instances down, excluded, full or
// behind open and half-open breakers, strict and overflow passes, a home or
// none, and settings.
func TestEngineScoreMatchesFullScoring(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	e := newEnv()
	e.epoch = e.now()
	bs := BreakerSettings{}.withDefaults()
	settled := 0
	for trial := range 5000 {
		n := 1 + r.IntN(40)
		nodes := make([]node, n)
		for i := range nodes {
			id := fmt.Sprint("i", i)
			w := []float64{1, 1, 1, 2, 0.5, 3}[r.IntN(6)]
			nodes[i] = node{st: newStats(id, uint32(i+1), e, &bs), id: id, weight: w, inv: 1 / w}
			nodes[i].st.inflight.Store(int64(r.IntN(6)))
			if r.IntN(4) == 0 {
				nodes[i].st.ewma.Store(int64(10+r.IntN(40)) * 1e6) // 10–49 ms
			}
			if r.IntN(8) == 0 {
				nodes[i].st.down.Store(true)
			}
			switch r.IntN(10) {
			case 0: // open, not yet due a probe
				nodes[i].st.brk.word.Store(uint64(gobreaker.StateOpen))
				nodes[i].st.brk.openUntil.Store(e.clock() + int64(time.Hour))
			case 1: // half-open with its probe slots taken
				nodes[i].st.brk.word.Store(uint64(gobreaker.StateHalfOpen))
				nodes[i].st.brk.probes.Store(int32(bs.HalfOpenProbes))
			case 2: // half-open with room for a probe
				nodes[i].st.brk.word.Store(uint64(gobreaker.StateHalfOpen))
			}
			if r.IntN(10) == 0 {
				nodes[i].max = 1 + int64(r.IntN(5)) // max_concurrency, maybe reached
			}
			if r.IntN(5) == 0 {
				nodes[i].st.engOwn.Store(0)
				nodes[i].st.engRunning.Store(int64(r.IntN(5)))
				nodes[i].st.engAt.Store(max(e.clock(), 1))
			}
		}
		s := &engineSelector{s: EngineSettings{Prefix: float64(r.IntN(4)), Queue: float64(r.IntN(3)),
			Latency: float64(r.IntN(3)), LoadFactor: []float64{1, 1.5, 2}[r.IntN(3)]}.WithDefaults()}
		home, depth, k := -1, 0, 1+r.IntN(32)
		if r.IntN(2) == 0 {
			home, depth = r.IntN(n), 1+r.IntN(k)
		}
		rv := r.Uint64()
		e.rand = func() uint64 { return rv }
		req := &Request{}
		if r.IntN(4) == 0 {
			req.Exclude = []string{fmt.Sprint("i", r.IntN(n))}
		}
		c := Candidates{nodes: nodes, req: req, env: e, level: []level{levelStrict, levelStrict, levelOverflow}[r.IntN(3)]}
		for i := range nodes {
			if got, want := c.available(i), c.availableAny(i); got != want {
				t.Fatalf("trial %d: candidate %d available %v by the inline rule, %v by the general one", trial, i, got, want)
			}
		}
		now := e.clock()
		want := refScore(s, &c, home, depth, k, now)
		if got := s.score(&c, home, depth, k, now); got != want {
			t.Fatalf("trial %d (n %d, home %d, %d/%d blocks, %+v): picked %d, full scoring picks %d", trial, n, home, depth, k, s.s, got, want)
		}
		if home >= 0 && c.available(home) {
			got := s.settled(&c, home, float64(depth)/float64(k), now)
			if got >= 0 {
				settled++
			}
			if got >= 0 && got != want {
				t.Fatalf("trial %d (n %d, home %d, %d/%d blocks, %+v): settled on %d, full scoring picks %d", trial, n, home, depth, k, s.s, got, want)
			}
		}
	}
	if settled < 100 {
		t.Errorf("the home settled the pick in %d of 5000 trials: the check above proves little", settled)
	}
}
