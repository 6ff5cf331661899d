package degrade_test

import (
	"testing"
	"time"

	"github.com/modelgate/modelgate/degrade"
)

// healthy is a route with nothing wrong; tests change one field at a time.
var healthy = degrade.Signals{Ready: 1, Capacity: 100, InFlight: 10, Requests: 100,
	TTFTp95: 200 * time.Millisecond, TTFTSLO: time.Second}

func with(f func(*degrade.Signals)) degrade.Signals {
	s := healthy
	f(&s)
	return s
}

func TestEvaluate(t *testing.T) {
	for _, tc := range []struct {
		name string
		th   degrade.Thresholds
		s    degrade.Signals
		want degrade.Tier
	}{
		{"healthy", degrade.Thresholds{}, healthy, degrade.TierNormal},
		{"zero signals mean nothing ready", degrade.Thresholds{}, degrade.Signals{}, degrade.TierCache},
		{"errors 0.2 shed", degrade.Thresholds{}, with(func(s *degrade.Signals) { s.ErrorRatio = 0.2 }), degrade.TierShed},
		{"errors 0.19", degrade.Thresholds{}, with(func(s *degrade.Signals) { s.ErrorRatio = 0.19 }), degrade.TierNormal},
		{"errors on too few requests", degrade.Thresholds{}, with(func(s *degrade.Signals) { s.ErrorRatio, s.Requests = 1, 9 }), degrade.TierNormal},
		{"MinRequests negative counts all", degrade.Thresholds{MinRequests: -1}, with(func(s *degrade.Signals) { s.ErrorRatio, s.Requests = 1, 1 }), degrade.TierCache},
		{"half the breakers", degrade.Thresholds{}, with(func(s *degrade.Signals) { s.BreakerOpen = 0.5 }), degrade.TierShed},
		{"ttft over slo", degrade.Thresholds{}, with(func(s *degrade.Signals) { s.TTFTp95 = 1100 * time.Millisecond }), degrade.TierShed},
		{"ttft without slo", degrade.Thresholds{}, with(func(s *degrade.Signals) { s.TTFTp95, s.TTFTSLO = time.Hour, 0 }), degrade.TierNormal},
		{"in flight 90%", degrade.Thresholds{}, with(func(s *degrade.Signals) { s.InFlight = 90 }), degrade.TierCap},
		{"in flight 89%", degrade.Thresholds{}, with(func(s *degrade.Signals) { s.InFlight = 89 }), degrade.TierNormal},
		{"capacity unknown", degrade.Thresholds{}, with(func(s *degrade.Signals) { s.InFlight, s.Capacity = 1000, 0 }), degrade.TierNormal},
		{"three quarters of breakers", degrade.Thresholds{}, with(func(s *degrade.Signals) { s.BreakerOpen = 0.75 }), degrade.TierCap},
		{"all breakers", degrade.Thresholds{}, with(func(s *degrade.Signals) { s.BreakerOpen = 1 }), degrade.TierCache},
		{"nothing ready", degrade.Thresholds{}, with(func(s *degrade.Signals) { s.Ready = 0 }), degrade.TierCache},
		{"errors 0.9", degrade.Thresholds{}, with(func(s *degrade.Signals) { s.ErrorRatio = 0.9 }), degrade.TierCache},
		{"cache trigger disabled", degrade.Thresholds{CacheBreakerOpen: -1}, with(func(s *degrade.Signals) { s.BreakerOpen = 1 }), degrade.TierCap},
		{"ready trigger disabled", degrade.Thresholds{CacheReady: -1}, with(func(s *degrade.Signals) { s.Ready = 0 }), degrade.TierNormal},
		{"custom shed", degrade.Thresholds{ShedErrorRatio: 0.05}, with(func(s *degrade.Signals) { s.ErrorRatio = 0.05 }), degrade.TierShed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.th.Evaluate(tc.s); got != tc.want {
				t.Fatalf("Evaluate = %v, want %v", got, tc.want)
			}
		})
	}
}
