// Package wrr is the smooth weighted round-robin policy (as in nginx): over
// any run of picks each candidate's share follows its Nacos weight closely,
// and heavy candidates are interleaved with light ones rather than picked
// in bursts. Candidates that are not available are skipped without
// accumulating credit.
package wrr

import (
	"sync"

	"github.com/modelgate/modelgate/balancer"
)

// Name is the policy's name in configuration.
const Name = "wrr"

// Policy is the smooth weighted round-robin policy. It is safe for
// concurrent use.
type Policy struct{}

var _ balancer.Policy = (*Policy)(nil)

// New returns the policy.
func New() *Policy { return &Policy{} }

// Name returns Name.
func (*Policy) Name() string { return Name }

// Build returns a selector with its own round-robin state for set; the
// state starts afresh on every rebuild of the balancer.
func (*Policy) Build(set balancer.Candidates) balancer.Selector {
	s := &selector{weight: make([]float64, set.Len()), current: make([]float64, set.Len())}
	for i := range s.weight {
		s.weight[i] = set.Weight(i)
	}
	return s
}

// selector holds one set's round-robin state behind a small lock: Select
// holds it for one pass over the set and does not allocate.
type selector struct {
	mu      sync.Mutex
	weight  []float64
	current []float64
}

// Select implements balancer.Selector.
func (s *selector) Select(c balancer.Candidates) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	best, total := -1, 0.0
	for i, w := range s.weight {
		if !c.Available(i) {
			continue
		}
		s.current[i] += w
		total += w
		if best < 0 || s.current[i] > s.current[best] {
			best = i
		}
	}
	if best >= 0 {
		s.current[best] -= total
	}
	return best
}
