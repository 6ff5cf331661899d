package degrade

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestHistBuckets(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(d time.Duration) {
		i := histIndex(d)
		up := histUpper(i)
		if i < 0 || i >= histBuckets {
			t.Fatalf("%v: index %d out of range", d, i)
		}
		if i < histBuckets-1 && (up < d.Truncate(time.Microsecond) || float64(up) > float64(d)*1.125+float64(time.Microsecond)) {
			t.Fatalf("%v: bucket %d upper %v", d, i, up)
		}
		if i > 0 && i < histBuckets-1 && histUpper(i-1) >= d.Truncate(time.Microsecond) {
			t.Fatalf("%v: also fits bucket %d (upper %v)", d, i-1, histUpper(i-1))
		}
	}
	for us := range 5000 {
		check(time.Duration(us) * time.Microsecond)
	}
	for range 100000 {
		check(time.Duration(rng.Int64N(int64(3 * time.Hour))))
	}
}
