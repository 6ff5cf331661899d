// Package twochoice holds the power-of-two-choices policy's arithmetic,
// shared by the balancer's default policy and package p2c (which imports
// the balancer, so the balancer cannot import it).
package twochoice

import "time"

// exploreMask makes one comparison in 64 go to the worse candidate, so that
// an instance once slow still gets the odd request that refreshes its
// average (which only results feed).
const exploreMask = 63

// tolerance is how much worse a score may be and still count as equal:
// scores within it are a tie, settled at random. Jitter between healthy
// instances then does not skew traffic away from the Nacos weights, while
// an instance really slower or busier (a 10× latency, one more request in
// flight on a single-request instance) still loses.
const tolerance = 1.25

// Cumulative returns the running sums of n weights.
func Cumulative(n int, weight func(int) float64) []float64 {
	cum := make([]float64, n)
	total := 0.0
	for i := range cum {
		total += weight(i)
		cum[i] = total
	}
	return cum
}

// Draw returns index i with probability weight(i) / total, from 32 random
// bits; -1 if there are no weights.
func Draw(cum []float64, r uint32) int {
	n := len(cum)
	if n == 0 || cum[n-1] <= 0 {
		return -1
	}
	x := float64(r) / (1 << 32) * cum[n-1]
	lo, hi := 0, n-1
	for lo < hi { // the first i with cum[i] > x
		if m := int(uint(lo+hi) >> 1); cum[m] > x {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// DrawPair draws two distinct indexes, each in proportion to its weight
// (the second among the rest), from r; b is -1 when only one can be had.
func DrawPair(cum []float64, r uint64) (a, b int) {
	a = Draw(cum, uint32(r))
	if a < 0 || len(cum) == 1 {
		return a, -1
	}
	// Redraw the second while it repeats the first; after a few tries take
	// the next index with weight.
	for i := range 4 {
		if b = Draw(cum, uint32(r>>32)^uint32(i)*0x9e3779b9); b != a {
			return a, b
		}
	}
	for i := 1; i < len(cum); i++ {
		if b = (a + i) % len(cum); weightAt(cum, b) > 0 {
			return a, b
		}
	}
	return a, -1
}

func weightAt(cum []float64, i int) float64 {
	if i == 0 {
		return cum[0]
	}
	return cum[i] - cum[i-1]
}

// Second reports whether the second of two candidates should be picked:
// whether its score (in-flight+1) × latency is clearly the lower one. Close
// scores are a tie, settled by r in proportion to the weights, so that
// healthy instances share traffic by weight; one clear comparison in 64 goes
// to the worse candidate. A candidate without a latency average yet is
// scored with the other's.
func Second(inA, inB int64, latA, latB time.Duration, wA, wB float64, r uint64) bool {
	switch {
	case latA == 0 && latB == 0:
		latA, latB = 1, 1
	case latA == 0:
		latA = latB
	case latB == 0:
		latB = latA
	}
	sa := float64(inA+1) * float64(latA)
	sb := float64(inB+1) * float64(latB)
	var second bool
	switch {
	case sb*tolerance < sa:
		second = true
	case sa*tolerance < sb:
		second = false
	default: // a tie: by weight
		return float64(r>>11)/(1<<53)*(wA+wB) < wB
	}
	return second != (r&exploreMask == 0)
}
