// Package p2c is the power-of-two-choices policy, the balancer's default:
// it draws two candidates, each in proportion to its Nacos weight, and
// picks the one with the clearly lower score (in-flight+1) × latency, where
// latency is the instance's moving average fed only by Picked.Done. Scores
// within 25 % of each other are a tie settled at random, so that with
// healthy instances traffic follows the weights; a slow or busy instance
// loses. One clear comparison in 64 goes to the worse of the two, so that an
// instance once slow gets the odd request that refreshes its average.
// Select is lock-free.
package p2c

import "github.com/modelgate/modelgate/balancer"

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

// Build precomputes the set's cumulative weights; it is the balancer's
// default policy, which lives there so the balancer need not import this
// package.
func (*Policy) Build(set balancer.Candidates) balancer.Selector {
	return balancer.DefaultPolicy().Build(set)
}
