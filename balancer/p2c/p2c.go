// Package p2c is the power-of-two-choices policy, the balancer's default:
// of two candidates sampled uniformly it picks the one with the lower score
// (in-flight+1) × latency ÷ weight, where latency is the instance's moving
// average fed only by Picked.Done. One pick in 64 goes to the worse of the
// two, so that an instance once slow gets the odd request that refreshes
// its average. It keeps no state: Select is lock-free.
package p2c

import (
	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/balancer/internal/twochoice"
)

// Name is the policy's name in configuration.
const Name = "p2c"

// Policy is the power-of-two-choices policy. It is stateless and safe for
// concurrent use.
type Policy struct{}

var _ balancer.Policy = (*Policy)(nil)

// New returns the policy.
func New() *Policy { return &Policy{} }

// Name returns Name.
func (*Policy) Name() string { return Name }

// Build returns the policy itself: it needs no per-set state.
func (p *Policy) Build(balancer.Candidates) balancer.Selector { return p }

// Select implements balancer.Selector.
func (*Policy) Select(c balancer.Candidates) int {
	a, b := c.Pair()
	if b >= 0 && twochoice.Second(c.InFlight(a), c.InFlight(b), c.Latency(a), c.Latency(b), c.Weight(a), c.Weight(b), c.Uint64()) {
		return b
	}
	return a
}
