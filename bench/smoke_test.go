package bench

import (
	"math"
	"testing"
	"time"

	"github.com/modelgate/modelgate/bench/chaos"
	"github.com/modelgate/modelgate/bench/perf"
	"github.com/modelgate/modelgate/internal/nacostest"
)

// TestSmokeBench runs `make bench` in short: one round of 1-second legs, 200
// concurrent streams and one timed deregistration against the test Nacos.
func TestSmokeBench(t *testing.T) {
	start := time.Now()
	rep, err := perf.Run(perf.Options{
		Leg: time.Second, Rounds: 1, NoWarmup: true, Pin: true,
		// Streams of ~3 s, so that all 200 are open at once even on a busy
		// machine under -race (at 20 ms gaps the first ended before the last
		// opened; at 1 s, with a load average of 19, 147 of 200 were).
		Streams: []int{200}, StreamChunks: 30, StreamGap: 100 * time.Millisecond,
		NacosAddr: nacostest.Addr(t), ConvRounds: 1,
		Bins: bins(t), Dir: t.TempDir(), Log: logWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	md := rep.Markdown()
	t.Logf("smoke bench in %v:\n%s", time.Since(start).Round(time.Second), md)
	f := rep.Figures()
	for name, v := range map[string]float64{
		"added p50 via": f.AddedP50Via, "added p50 floor": f.AddedP50Floor,
		"TTFT p50 via": f.TTFTp50Via, "convergence": f.ConvMedian,
	} {
		if math.IsNaN(v) || math.Abs(v) > 10_000 {
			t.Errorf("%s = %v ms: not a sane figure", name, v)
		}
	}
	for name, v := range map[string]float64{"c16 via": f.Thr16Via, "c64 via": f.Thr64Via, "c64 floor": f.Thr64Floor} {
		if !(v > 0.05 && v < 5) {
			t.Errorf("throughput ratio %s = %v: not sane", name, v)
		}
	}
	if !(f.CPUVia > 0 && f.CPUFloor > 0) {
		t.Errorf("CPU per request via %v µs, floor %v µs: want both > 0", f.CPUVia, f.CPUFloor)
	}
	if !f.ChunksOK || f.EventsDirect != 23 || f.EventsVia != 23 {
		t.Errorf("streams: chunks ok %v, events direct %d via %d, want 23 each", f.ChunksOK, f.EventsDirect, f.EventsVia)
	}
	for _, c := range rep.Capacity {
		if c.Complete != c.Requested || c.Errors != 0 {
			t.Errorf("%d streams via %s: %d complete, %d errors", c.Requested, c.Proxy, c.Complete, c.Errors)
		}
	}
	if f.StreamsHeld != 200 {
		t.Errorf("streams held %d, want 200", f.StreamsHeld)
	}
	if rep.IdleRSS <= 0 || rep.IdleRSSNacos <= 0 {
		t.Errorf("idle RSS %d, with Nacos %d", rep.IdleRSS, rep.IdleRSSNacos)
	}
	if len(rep.Convergence) != 1 || rep.Convergence[0] > 30*time.Second || rep.ConvErrors != 0 {
		t.Errorf("convergence %v with %d errors", rep.Convergence, rep.ConvErrors)
	}
}

// TestChaosShort runs every `make chaos` scenario but the Nacos restart
// (TestChaosNacosRestart) for 5 s at 100 requests/s against the test Nacos.
func TestChaosShort(t *testing.T) {
	start := time.Now()
	results, err := chaos.Run(chaos.Options{
		NacosAddr: nacostest.Addr(t), Duration: 5 * time.Second, Rate: 100,
		// Gross sanity on a busy machine: the full run's goal is 15 %.
		SlowShareGoal: 0.3,
		Bins:          bins(t), Dir: t.TempDir(), Log: logWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(chaos.Scenarios)-1 {
		t.Errorf("%d scenarios ran, want %d", len(results), len(chaos.Scenarios)-1)
	}
	for _, r := range results {
		if !r.OK {
			t.Error(r.Line())
		}
		if r.Sent < 250 {
			t.Errorf("%s: only %d requests sent in 5 s at 100/s", r.Name, r.Sent)
		}
	}
	t.Logf("short chaos in %v", time.Since(start).Round(time.Second))
}
