// Package random is the weighted random policy: each candidate is picked
// with probability proportional to its Nacos weight, whatever its load.
package random

import "github.com/modelgate/modelgate/balancer"

// Name is the policy's name in configuration.
const Name = "random"

// Policy is the weighted random policy. It is safe for concurrent use.
type Policy struct{}

var _ balancer.Policy = (*Policy)(nil)

// New returns the policy.
func New() *Policy { return &Policy{} }

// Name returns Name.
func (*Policy) Name() string { return Name }

// Build precomputes the cumulative weights of set.
func (*Policy) Build(set balancer.Candidates) balancer.Selector {
	cum := make([]float64, set.Len())
	total := 0.0
	for i := range cum {
		total += set.Weight(i)
		cum[i] = total
	}
	return &selector{cum: cum}
}

// selector is immutable after Build; Select is lock-free.
type selector struct {
	cum []float64 // cumulative weights
}

// Select draws by the precomputed weights; if the draw is not available it
// draws again among the available candidates in one pass.
func (s *selector) Select(c balancer.Candidates) int {
	n := len(s.cum)
	if n == 0 {
		return -1
	}
	x := unit(c.Uint64()) * s.cum[n-1]
	lo, hi := 0, n-1
	for lo < hi { // the first i with cum[i] > x
		if m := int(uint(lo+hi) >> 1); s.cum[m] > x {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if c.Available(lo) {
		return lo
	}
	// Weighted reservoir sampling over what is available.
	pick, total := -1, 0.0
	for i := range n {
		if !c.Available(i) {
			continue
		}
		w := c.Weight(i)
		total += w
		if unit(c.Uint64())*total < w {
			pick = i
		}
	}
	return pick
}

// unit maps a random word to [0, 1).
func unit(r uint64) float64 { return float64(r>>11) * 0x1p-53 }
