// Package twochoice holds the power-of-two-choices policy's arithmetic,
// shared by the balancer's default policy and package p2c (which imports
// the balancer, so the balancer cannot import it).
package twochoice

import "time"

// exploreMask makes one comparison in 64 go to the worse candidate, so that
// an instance once slow still gets the odd request that refreshes its
// average (which only results feed).
const exploreMask = 63

// Two candidates differ clearly in latency when one's average is both
// latencyRatio times and latencyGap more than the other's: jitter between
// healthy instances is neither, a slow instance is both.
const (
	latencyRatio = 1.5
	latencyGap   = 10 * time.Millisecond
)

// A candidate is clearly busier than another when its in-flight requests
// per unit of weight (weights scaled to a mean of 1) are both loadRatio
// times and loadGap more than the other's. Model servers batch many
// requests at once: a request or two more is noise, not load.
const (
	loadRatio = 1.5
	loadGap   = 3
)

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
// the one clearly faster (moving average of latency), else the one clearly
// less loaded for its weight (in flight ÷ Nacos weight, smoothed), else one
// by weight at random. Load per weight keeps shares by weight under any concurrency,
// and a tie by weight keeps them when idle; one clear decision in 64 goes
// to the worse candidate, so a slow one still refreshes its average.
func Second(inA, inB int64, latA, latB time.Duration, wA, wB float64, r uint64) bool {
	var second bool
	// Load per weight, the weights scaled to a mean of 1 and one request's
	// worth added, so that idle candidates tie and one request more on a
	// heavy candidate is no reason to skip it.
	mean := (wA + wB) / 2
	la, lb := float64(inA)*mean/wA+1, float64(inB)*mean/wB+1
	switch {
	case latA > 0 && latB > 0 && float64(latA) > latencyRatio*float64(latB) && latA-latB > latencyGap:
		second = true
	case latA > 0 && latB > 0 && float64(latB) > latencyRatio*float64(latA) && latB-latA > latencyGap:
		second = false
	case la > loadRatio*lb && la-lb > loadGap:
		second = true
	case lb > loadRatio*la && lb-la > loadGap:
		second = false
	default: // a tie: by weight
		return float64(r>>11)/(1<<53)*(wA+wB) < wB
	}
	return second != (r&exploreMask == 0)
}
