package balancer

import (
	"sync/atomic"
	"time"

	"github.com/modelgate/modelgate/discovery"
)

// stats is what the balancer knows of one instance across pool versions:
// load, latency, counters and breaker. It lives as long as the instance's ID
// is in the pool. All fields are safe for concurrent use.
type stats struct {
	// What a pick reads of every candidate comes first, within one or two
	// cache lines: load, latency, the engine's load, health, then the
	// breaker's state word.
	inflight atomic.Int64
	ewma     atomic.Int64 // nanoseconds; 0 until the first result

	// The engine's own load, set by Balancer.SetEngineLoad.
	engAt      atomic.Int64 // env clock when set; 0 for never or cleared
	engWaiting atomic.Int64
	engRunning atomic.Int64
	engOwn     atomic.Int64 // inflight when set: the engine's requests that were ours

	// Active health, set by Balancer.ReportHealth.
	down       atomic.Bool // failed its probes: not picked
	probed     atomic.Bool
	probeFails atomic.Int32

	brk      breaker
	finished atomic.Uint64 // attempts reported through Done; picks = finished + inflight
	failures atomic.Uint64
	seen     uint64 // the last build that found the instance in the pool; guarded by Balancer.mu
	serial   uint32 // never 0; names the instance in prefix indexes
}

func newStats(id string, serial uint32, e *env, brk *BreakerSettings) *stats {
	s := &stats{serial: serial}
	s.brk.init(id, e, brk)
	return s
}

// maxEWMA bounds the average so that repeated failure penalties cannot
// overflow it.
const maxEWMA = int64(time.Hour)

// observe folds one latency sample into the moving average (weight 1/4 for
// the new sample). A failure counts as at least twice the current average,
// so that an instance failing fast does not look fast.
func (s *stats) observe(d time.Duration, failed bool) {
	for {
		old := s.ewma.Load()
		x := int64(d)
		if failed && x < 2*old {
			x = 2 * old
		}
		if x <= 0 {
			return
		}
		next := min(x, maxEWMA)
		if old > 0 {
			next = min(old+(x-old)/4, maxEWMA)
		}
		if s.ewma.CompareAndSwap(old, next) {
			return
		}
	}
}

// done ends one attempt picked on s.
func (s *stats) done(p *Picked, r *Result) {
	s.finished.Add(1)
	s.inflight.Add(-1)
	if p.probe {
		s.brk.probes.Add(-1)
	}
	o := r.outcome()
	if o == excluded {
		return
	}
	if o == failure {
		s.failures.Add(1)
	}
	s.observe(r.sample(), o == failure)
	if p.counted {
		s.brk.record(p.gen, o == failure)
	}
}

// node is one instance in one candidate set of one balancer snapshot.
type node struct {
	in     *discovery.Instance
	st     *stats
	id     string
	weight float64
	inv    float64 // 1/weight
	max    int64   // max_concurrency; 0 means none
	mask   uint64  // bits of its tags in its service's tag index
}

func (n *node) full() bool { return n.max > 0 && n.st.inflight.Load() >= n.max }

// admit takes the breaker admission and an in-flight slot for one pick at
// level lvl; at levelStrict a full instance is refused.
func (n *node) admit(lvl level) (Picked, bool) {
	st := n.st
	gen, probe, ok := st.brk.admit()
	if !ok {
		return Picked{}, false
	}
	if lvl == levelStrict && n.max > 0 {
		if !st.reserve(n.max) {
			if probe {
				st.brk.probes.Add(-1)
			}
			return Picked{}, false
		}
	} else {
		st.inflight.Add(1)
	}
	return Picked{Instance: n.in, st: st, gen: gen, probe: probe, counted: true}, true
}

// reserve takes an in-flight slot if fewer than limit are taken.
func (s *stats) reserve(limit int64) bool {
	for {
		cur := s.inflight.Load()
		if cur >= limit {
			return false
		}
		if s.inflight.CompareAndSwap(cur, cur+1) {
			return true
		}
	}
}
