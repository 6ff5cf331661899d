package perf

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/modelgate/modelgate/bench/harness"
)

// Figures are the headline numbers, medians over rounds (durations in ms).
type Figures struct {
	AddedP50Via, AddedP50Floor, AddedP99Via, AddedP99Floor float64
	Thr16Via, Thr16Floor, Thr64Via, Thr64Floor             float64
	CPUVia, CPUFloor, CPURatio                             float64 // µs per request at c=64
	TTFTp50Via, TTFTp50Floor, TTFTp99Via, TTFTp99Floor     float64
	GapP99Via, GapP99Floor                                 float64
	// ChunksOK: every stream of every leg ended with [DONE] and the same
	// events and text as the direct leg's.
	ChunksOK                bool
	EventsDirect, EventsVia int
	// StreamsHeld is the largest level held through modelgate with every
	// chunk delivered and RSS ≤ 256 MB; StreamsRSS its peak RSS.
	StreamsHeld int
	StreamsRSS  int64
	ConvMedian  float64 // ms
	ConvMax     float64
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// perRound applies f to each round's legs and returns the values.
func (r *Report) perRound(phase string, f func(direct, via, floor LegResult) float64) []float64 {
	legs := r.Rounds[phase]
	var out []float64
	for i := range legs["direct"] {
		out = append(out, f(legs["direct"][i], legs["via"][i], legs["floor"][i]))
	}
	return out
}

func (r *Report) median(phase string, f func(direct, via, floor LegResult) float64) float64 {
	return harness.Median(r.perRound(phase, f))
}

// Figures computes the headline numbers.
func (r *Report) Figures() Figures {
	var f Figures
	f.AddedP50Via = r.median("c1", func(d, v, _ LegResult) float64 { return ms(v.Wrk.P50 - d.Wrk.P50) })
	f.AddedP50Floor = r.median("c1", func(d, _, fl LegResult) float64 { return ms(fl.Wrk.P50 - d.Wrk.P50) })
	f.AddedP99Via = r.median("c1", func(d, v, _ LegResult) float64 { return ms(v.Wrk.P99 - d.Wrk.P99) })
	f.AddedP99Floor = r.median("c1", func(d, _, fl LegResult) float64 { return ms(fl.Wrk.P99 - d.Wrk.P99) })
	f.Thr16Via = r.median("c16", func(d, v, _ LegResult) float64 { return v.Wrk.RPS / d.Wrk.RPS })
	f.Thr16Floor = r.median("c16", func(d, _, fl LegResult) float64 { return fl.Wrk.RPS / d.Wrk.RPS })
	f.Thr64Via = r.median("c64", func(d, v, _ LegResult) float64 { return v.Wrk.RPS / d.Wrk.RPS })
	f.Thr64Floor = r.median("c64", func(d, _, fl LegResult) float64 { return fl.Wrk.RPS / d.Wrk.RPS })
	f.CPUVia = r.median("c64", func(_, v, _ LegResult) float64 { return float64(v.CPUPerReq) / 1e3 })
	f.CPUFloor = r.median("c64", func(_, _, fl LegResult) float64 { return float64(fl.CPUPerReq) / 1e3 })
	f.CPURatio = r.median("c64", func(_, v, fl LegResult) float64 { return float64(v.CPUPerReq) / float64(fl.CPUPerReq) })
	f.TTFTp50Via = r.median("stream", func(d, v, _ LegResult) float64 { return ms(v.TTFTp50 - d.TTFTp50) })
	f.TTFTp50Floor = r.median("stream", func(d, _, fl LegResult) float64 { return ms(fl.TTFTp50 - d.TTFTp50) })
	f.TTFTp99Via = r.median("stream", func(d, v, _ LegResult) float64 { return ms(v.TTFTp99 - d.TTFTp99) })
	f.TTFTp99Floor = r.median("stream", func(d, _, fl LegResult) float64 { return ms(fl.TTFTp99 - d.TTFTp99) })
	f.GapP99Via = r.median("stream", func(d, v, _ LegResult) float64 { return ms(v.GapP99 - d.GapP99) })
	f.GapP99Floor = r.median("stream", func(d, _, fl LegResult) float64 { return ms(fl.GapP99 - d.GapP99) })
	f.ChunksOK = true
	for _, rounds := range [][]LegResult{r.Rounds["stream"]["via"], r.Rounds["stream"]["floor"], r.Rounds["stream"]["direct"]} {
		for i, l := range rounds {
			d := r.Rounds["stream"]["direct"][i]
			if l.BadStreams > 0 || l.Streams == 0 || l.Events != d.Events || l.ContentLen != d.ContentLen {
				f.ChunksOK = false
			}
		}
	}
	if s := r.Rounds["stream"]; len(s["direct"]) > 0 {
		f.EventsDirect, f.EventsVia = s["direct"][0].Events, s["via"][0].Events
	}
	for _, c := range r.Capacity {
		if c.Proxy == "via" && c.OK() && c.PeakRSS <= 256<<20 && c.Requested > f.StreamsHeld {
			f.StreamsHeld, f.StreamsRSS = c.Requested, c.PeakRSS
		}
	}
	var conv []float64
	for _, c := range r.Convergence {
		conv = append(conv, ms(c))
	}
	f.ConvMedian = harness.Median(conv)
	if len(conv) > 0 {
		f.ConvMax = slices.Max(conv)
	}
	return f
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

func msf(x float64) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	return fmt.Sprintf("%+.3f ms", x)
}

// Markdown renders the run as the tables of BENCHMARKS.md.
func (r *Report) Markdown() string {
	f := r.Figures()
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("Run: `make bench` (BENCH_SECONDS=%g, %d rounds), %s, took %s.",
		r.Opts.Leg.Seconds(), r.Opts.Rounds, r.Start.Format("2006-01-02 15:04 MST"), r.Took.Round(time.Second))
	p("Machine: %s. modelgate and the floor on CPU 0 with GOMAXPROCS=1, mocks, wrk and the stream client on CPU 1 (pinned: %v, idle spinners: %v).", r.Machine, r.Opts.Pin, r.Opts.Spin)
	p("Load average (1, 5, 15 min) at the start: %s; at the end: %s.", r.LoadAvg[0], r.LoadAvg[1])
	for _, t := range r.Tiers {
		p("Degradation after the load: %s.", t)
	}
	p("")
	p("| # | figure | modelgate (via) | floor | target | |")
	p("|---|---|---|---|---|---|")
	p("| 1 | added latency p50, c=1, non-streaming | %s | %s | ≤ floor + 0.05 ms | %s |", msf(f.AddedP50Via), msf(f.AddedP50Floor), met(f.AddedP50Via <= f.AddedP50Floor+0.05))
	p("| 1 | added latency p99, c=1 | %s | %s | — | |", msf(f.AddedP99Via), msf(f.AddedP99Floor))
	p("| 2 | throughput / direct, c=16, 20 ms mock | %.3f | %.3f | — | |", f.Thr16Via, f.Thr16Floor)
	p("| 2 | throughput / direct, c=64, 20 ms mock | %.3f | %.3f | ≥ 0.95 | %s |", f.Thr64Via, f.Thr64Floor, met(f.Thr64Via >= 0.95))
	p("| 3 | CPU per request, c=64 (µs) | %.1f | %.1f | ratio ≤ 1.5 | %s (ratio %.2f) |", f.CPUVia, f.CPUFloor, met(f.CPURatio <= 1.5), f.CPURatio)
	p("| 4 | added TTFT p50, 20-chunk stream | %s | %s | ≤ floor + 0.1 ms | %s |", msf(f.TTFTp50Via), msf(f.TTFTp50Floor), met(f.TTFTp50Via <= f.TTFTp50Floor+0.1))
	p("| 4 | added TTFT p99 | %s | %s | — | |", msf(f.TTFTp99Via), msf(f.TTFTp99Floor))
	p("| 4 | added inter-chunk gap p99 | %s | %s | — | |", msf(f.GapP99Via), msf(f.GapP99Floor))
	p("| 4 | chunks in = chunks out (events per stream direct/via: %d/%d) | %v | | no lost or merged chunk | %s |", f.EventsDirect, f.EventsVia, f.ChunksOK, met(f.ChunksOK))
	p("| 4 | concurrent streams held, no chunk lost, RSS ≤ 256 MB | %d (%s) | | ≥ 2,000 | %s |", f.StreamsHeld, mb(f.StreamsRSS), met(f.StreamsHeld >= 2000))
	p("| 5 | balancer pick | `go test -run '^$' -bench . -benchmem ./balancer/` | | | |")
	if len(r.Convergence) > 0 {
		p("| 6 | convergence: deregister → last request to the old instance (median, max of %d) | %.0f ms, %.0f ms | | — | errors during it: %d |", len(r.Convergence), f.ConvMedian, f.ConvMax, r.ConvErrors)
	} else {
		p("| 6 | convergence | not measured (no Nacos) | | | |")
	}
	for k, n := range r.ConvErrorKinds {
		p("| 6 | errors during the convergence run: %s | %d | | 0 | **see notes** |", k, n)
	}
	p("| 7 | RSS idle, static pool | %s | %s | ≤ 40 MB | %s |", mb(r.IdleRSS), mb(r.IdleRSSFloor), met(r.IdleRSS <= 40<<20))
	if r.IdleRSSNacos > 0 {
		p("| 7 | RSS idle, Nacos discovery | %s | | ≤ 40 MB | %s |", mb(r.IdleRSSNacos), met(r.IdleRSSNacos <= 40<<20))
	}
	p("| 7 | RSS after the request legs | %s | | — | |", mb(r.AfterLoadRSS))
	if f.StreamsHeld > 0 {
		p("| 7 | RSS under %d streams | %s | %s | ≤ 256 MB | %s |", f.StreamsHeld, mb(f.StreamsRSS), mb(r.floorRSS(f.StreamsHeld)), met(f.StreamsRSS <= 256<<20))
	}
	p("")
	p("Per round (direct / via / floor):")
	p("")
	p("| round | c=1 p50 (ms) | c=1 p99 (ms) | c=16 req/s | c=64 req/s | CPU µs/req c=64 (via / floor) | TTFT p50 (ms) | gap p99 (ms) |")
	p("|---|---|---|---|---|---|---|---|")
	for i := range r.Rounds["c1"]["direct"] {
		leg := func(ph string, get func(LegResult) string) string {
			return get(r.Rounds[ph]["direct"][i]) + " / " + get(r.Rounds[ph]["via"][i]) + " / " + get(r.Rounds[ph]["floor"][i])
		}
		p("| %d | %s | %s | %s | %s | %.1f / %.1f | %s | %s |", i+1,
			leg("c1", func(l LegResult) string { return fmt.Sprintf("%.3f", ms(l.Wrk.P50)) }),
			leg("c1", func(l LegResult) string { return fmt.Sprintf("%.3f", ms(l.Wrk.P99)) }),
			leg("c16", func(l LegResult) string { return fmt.Sprintf("%.0f", l.Wrk.RPS) }),
			leg("c64", func(l LegResult) string { return fmt.Sprintf("%.0f", l.Wrk.RPS) }),
			float64(r.Rounds["c64"]["via"][i].CPUPerReq)/1e3, float64(r.Rounds["c64"]["floor"][i].CPUPerReq)/1e3,
			leg("stream", func(l LegResult) string { return fmt.Sprintf("%.3f", ms(l.TTFTp50)) }),
			leg("stream", func(l LegResult) string { return fmt.Sprintf("%.3f", ms(l.GapP99)) }))
	}
	p("")
	p("Concurrent streams (%d chunks, %v apart, all opened at once):", r.Opts.StreamChunks, r.Opts.StreamGap)
	p("")
	p("| streams | proxy | held at once | complete | errors | degraded replies | peak RSS | gap p99 | took |")
	p("|---|---|---|---|---|---|---|---|---|")
	for _, c := range r.Capacity {
		deg := "0"
		if len(c.Degraded) > 0 {
			deg = fmt.Sprint(c.Degraded)
		}
		p("| %d | %s | %d | %d | %d | %s | %s | %.1f ms | %s |", c.Requested, c.Proxy, c.Held, c.Complete, c.Errors, deg, mb(c.PeakRSS), ms(c.GapP99), c.Took.Round(10*time.Millisecond))
	}
	return b.String()
}

func (r *Report) floorRSS(n int) int64 {
	for _, c := range r.Capacity {
		if c.Proxy == "floor" && c.Requested == n {
			return c.PeakRSS
		}
	}
	return 0
}
