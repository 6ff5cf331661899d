// Package twochoice holds the comparison of the power-of-two-choices policy,
// shared by the balancer's default policy and package p2c (which imports
// the balancer, so the balancer cannot import it).
package twochoice

import "time"

// exploreMask makes one comparison in 64 go to the worse candidate, so that
// an instance once slow still gets the odd request that refreshes its
// average (which only results feed).
const exploreMask = 63

// Second reports whether the second of two candidates should be picked:
// whether its score (in-flight+1) × latency ÷ weight is the lower one,
// inverted when r (a random word) says to explore. A candidate without a
// latency average yet is scored with the other's.
func Second(inA, inB int64, latA, latB time.Duration, wA, wB float64, r uint64) bool {
	switch {
	case latA == 0 && latB == 0:
		latA, latB = 1, 1
	case latA == 0:
		latA = latB
	case latB == 0:
		latB = latA
	}
	sa := float64(inA+1) * float64(latA) / wA
	sb := float64(inB+1) * float64(latB) / wB
	return (sb < sa) != (r&exploreMask == 0)
}
