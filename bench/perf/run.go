package perf

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelgate/modelgate/bench/harness"
)

// Legs, in the order of the first round; later rounds rotate it.
var legs = []string{"direct", "via", "floor"}

// LegResult is one leg of one round.
type LegResult struct {
	Wrk harness.WrkResult
	// CPUPerReq is the proxy's CPU time per request (via and floor legs).
	CPUPerReq time.Duration
	// Streams (stream phase).
	TTFTp50, TTFTp99, GapP99 time.Duration
	Streams, BadStreams      int
	Events, ContentLen       int // of the first stream; every stream must match
}

// Capacity is one level of concurrent streams through one proxy.
type Capacity struct {
	Proxy     string // via or floor
	Requested int
	Held      int // peak of streams open at once
	Complete  int // streams that got every event and [DONE]
	Errors    int
	// Degraded counts replies modelgate marked X-Modelgate-Degraded (a
	// replay from its reply cache, or a wait in its queue).
	Degraded map[string]int
	PeakRSS  int64
	GapP99   time.Duration
	Took     time.Duration
}

// OK reports whether every stream of the level arrived whole and all were
// open at once.
func (c Capacity) OK() bool {
	return c.Complete == c.Requested && c.Held == c.Requested && c.Errors == 0
}

// Report is everything a run measured.
type Report struct {
	Opts    Options
	Machine string
	Start   time.Time
	Took    time.Duration
	// Phase → leg → per-round results.
	Rounds map[string]map[string][]LegResult
	// RSS idle right after start, and after the request legs.
	IdleRSS, IdleRSSFloor, AfterLoadRSS int64
	Capacity                            []Capacity
	// Convergence, per deregistration: deregister → last request to the
	// old instance.
	Convergence    []time.Duration
	ConvErrors     int
	ConvErrorKinds map[string]int
	// StartupErrors are requests that failed after /readyz said ready and
	// before the first good reply.
	StartupErrors int
	IdleRSSNacos  int64
	// Tiers lists the routes whose degradation tier was not normal after
	// the load, as GET /admin/degrade reports them.
	Tiers []string
	// LoadAvg is /proc/loadavg at the start and at the end: other work on
	// the machine skews the figures.
	LoadAvg [2]string
}

// Phases of a round.
var phases = []struct {
	name, model string
	conns       int
}{
	{"c1", "fast", 1}, {"c16", "slow", 16}, {"c64", "slow", 64}, {"stream", "stream", 1},
}

// Run measures. It builds the binaries, starts the processes, runs the
// interleaved rounds, the stream capacity levels and, with a Nacos, the
// convergence rounds, and stops everything it started.
func Run(o Options) (*Report, error) {
	o.defaults()
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "modelgate-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		o.Dir = dir
	}
	if err := harness.EnsureWrk(); err != nil {
		return nil, err
	}
	rep := &Report{Opts: o, Machine: harness.Machine(), Start: time.Now(), Rounds: map[string]map[string][]LegResult{},
		LoadAvg: [2]string{harness.LoadAvg()}}
	if o.PinSelf {
		if err := harness.PinSelf("1"); err != nil {
			return nil, err
		}
	}
	// Each stream holds a connection in the client, two in a proxy and
	// one in the mock.
	need := uint64(2*slices.Max(o.Streams) + 1024)
	if got, err := harness.RaiseFDLimit(need); err != nil || got < need {
		fmt.Fprintf(o.Log, "bench: open-file limit %d (wanted %d): the largest stream levels may fail (%v)\n", got, need, err)
	}
	e, err := setup(&o)
	if err != nil {
		return nil, err
	}
	defer e.close()
	if rep.IdleRSS, err = e.mg.RSS(); err != nil {
		return nil, err
	}
	if rep.IdleRSSFloor, err = e.floors["fast"].RSS(); err != nil {
		return nil, err
	}

	var spin *harness.Spinners
	if o.Spin {
		if spin, err = harness.Spin(0, 1); err != nil {
			return nil, err
		}
		defer spin.Stop()
	}
	// Warm up every path: connections and pools.
	for _, ph := range phases[:3] {
		for _, leg := range legs {
			if o.NoWarmup {
				break
			}
			if _, err := e.leg(ph.model, ph.conns, leg, time.Second); err != nil {
				return nil, fmt.Errorf("warm-up %s %s: %w", ph.name, leg, err)
			}
		}
	}
	for r := range o.Rounds {
		for _, ph := range phases {
			for i := range legs {
				leg := legs[(i+r)%len(legs)]
				var res LegResult
				if ph.name == "stream" {
					res, err = e.streamLeg(leg, o.Leg)
				} else {
					res, err = e.leg(ph.model, ph.conns, leg, o.Leg)
				}
				if err != nil {
					return nil, fmt.Errorf("round %d %s %s: %w", r+1, ph.name, leg, err)
				}
				if rep.Rounds[ph.name] == nil {
					rep.Rounds[ph.name] = map[string][]LegResult{}
				}
				rep.Rounds[ph.name][leg] = append(rep.Rounds[ph.name][leg], res)
			}
		}
		e.logf("round %d of %d done", r+1, o.Rounds)
	}
	if rep.AfterLoadRSS, err = e.mg.RSS(); err != nil {
		return nil, err
	}
	spin.Stop() // the capacity test saturates the CPUs by itself

	if err := harness.Post(e.ctlStream + fmt.Sprintf("set?chunks=%d&gap=%s", o.StreamChunks, o.StreamGap)); err != nil {
		return nil, err
	}
	// Every level through both proxies; once modelgate fails a level, the
	// floor alone goes on, to show what the HTTP stack itself holds.
	viaFailed := false
	for _, n := range o.Streams {
		floorOK := true
		for _, proxy := range []string{"via", "floor"} {
			if proxy == "via" && viaFailed {
				continue
			}
			c, err := e.capacity(proxy, n)
			if err != nil {
				return nil, err
			}
			e.logf("%d streams via %s: held %d, complete %d, errors %d, degraded %v, RSS %d MB", n, proxy, c.Held, c.Complete, c.Errors, c.Degraded, c.PeakRSS>>20)
			rep.Capacity = append(rep.Capacity, c)
			failed := !c.OK() || c.PeakRSS > 256<<20
			if proxy == "via" {
				viaFailed = viaFailed || failed
			} else {
				floorOK = !failed
			}
		}
		if viaFailed && !floorOK {
			break
		}
	}
	rep.Tiers = e.tiers()
	if o.NacosAddr != "" {
		if err := e.convergence(rep); err != nil {
			return nil, err
		}
	}
	rep.Took = time.Since(rep.Start)
	rep.LoadAvg[1] = harness.LoadAvg()
	return rep, nil
}

// target returns the address of leg's first hop for model's mock.
func (e *env) target(model, leg string) (string, *harness.Proc) {
	switch leg {
	case "via":
		return e.mgAddr, e.mg
	case "floor":
		return e.floorAddr[model], e.floors[model]
	}
	return map[string]string{"fast": e.mockFast, "slow": e.mock20, "stream": e.mockStream}[model], nil
}

// leg runs wrk against one leg and reads the proxy's CPU time around it.
func (e *env) leg(model string, conns int, leg string, d time.Duration) (LegResult, error) {
	addr, proxy := e.target(model, leg)
	var cpu0 time.Duration
	if proxy != nil {
		var err error
		if cpu0, err = proxy.CPU(); err != nil {
			return LegResult{}, err
		}
	}
	cpu := ""
	if e.o.Pin {
		cpu = e.cpuAux
	}
	w, err := harness.Wrk(cpu, "http://"+addr+"/v1/chat/completions", string(harness.ChatBody(model, false)), conns, d)
	if err != nil {
		return LegResult{}, err
	}
	if w.Errors > 0 {
		return LegResult{}, fmt.Errorf("%d errors:\n%s", w.Errors, w.Raw)
	}
	res := LegResult{Wrk: w}
	if proxy != nil {
		cpu1, err := proxy.CPU()
		if err != nil {
			return LegResult{}, err
		}
		res.CPUPerReq = (cpu1 - cpu0) / time.Duration(max(w.Requests, 1))
	}
	return res, nil
}

// streamLeg runs streams one after another for d and times their events.
func (e *env) streamLeg(leg string, d time.Duration) (LegResult, error) {
	addr, _ := e.target("stream", leg)
	hc := harness.NewClient(addr, true)
	defer hc.CloseIdleConnections()
	var ttfts, gaps []time.Duration
	var res LegResult
	for end := time.Now().Add(d); time.Now().Before(end); {
		s := harness.Stream(hc, "stream", true, nil)
		if s.Err != nil || s.Status != 200 {
			return res, fmt.Errorf("stream: status %d: %v", s.Status, s.Err)
		}
		if res.Streams == 0 {
			res.Events, res.ContentLen = s.Events, s.ContentLen
		}
		res.Streams++
		if !s.Done || s.ErrorEvent || s.Events != res.Events || s.ContentLen != res.ContentLen {
			res.BadStreams++
		}
		ttfts = append(ttfts, s.TTFT)
		gaps = append(gaps, s.Gaps...)
	}
	res.TTFTp50, res.TTFTp99 = harness.Percentile(ttfts, 50), harness.Percentile(ttfts, 99)
	res.GapP99 = harness.Percentile(gaps, 99)
	return res, nil
}

// capacity opens n streams at once through proxy and checks that each gets
// every event, while sampling the proxy's memory.
func (e *env) capacity(proxy string, n int) (Capacity, error) {
	addr, p := e.target("stream", proxy)
	c := Capacity{Proxy: proxy, Requested: n, Degraded: map[string]int{}}
	hc := harness.NewClient(addr, true)
	defer hc.CloseIdleConnections()
	want := e.o.StreamChunks + 3 // role, content chunks, final, [DONE]
	sampler := harness.SampleRSS(p.PID(), 50*time.Millisecond)
	var open, peak atomic.Int64
	var mu sync.Mutex
	var gaps []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Go(func() {
			s := harness.Stream(hc, "stream", true, func(string) {
				now := open.Add(1)
				for {
					p := peak.Load()
					if now <= p || peak.CompareAndSwap(p, now) {
						break
					}
				}
			})
			if s.Status != 0 {
				open.Add(-1)
			}
			mu.Lock()
			defer mu.Unlock()
			gaps = append(gaps, s.Gaps...)
			if s.Degraded != "" {
				c.Degraded[s.Degraded]++
			}
			switch {
			case s.Err != nil || s.Status != 200 || s.ErrorEvent:
				c.Errors++
				if firstErr == nil {
					firstErr = fmt.Errorf("status %d, error event %v: %v", s.Status, s.ErrorEvent, s.Err)
				}
			case s.Done && s.Events == want && s.Degraded != "cache": // a replay is not this request's reply
				c.Complete++
			}
		})
	}
	wg.Wait()
	c.Took = time.Since(start)
	c.PeakRSS = sampler.Stop()
	c.Held = int(peak.Load())
	c.GapP99 = harness.Percentile(gaps, 99)
	if firstErr != nil {
		e.logf("%d streams via %s: first error: %v", n, proxy, firstErr)
	}
	return c, nil
}

// tiers reads modelgate's degradation tiers and returns the routes not at
// normal, with their signals.
func (e *env) tiers() []string {
	body, err := harness.Get("http://" + e.mgAdmin + "/admin/degrade")
	if err != nil {
		return []string{"GET /admin/degrade: " + err.Error()}
	}
	var st []struct {
		Route   string         `json:"route"`
		Tier    string         `json:"tier"`
		Signals map[string]any `json:"signals"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return []string{"GET /admin/degrade: " + err.Error()}
	}
	var out []string
	for _, s := range st {
		if s.Tier != "normal" {
			out = append(out, fmt.Sprintf("%s at tier %s (signals %v)", s.Route, s.Tier, s.Signals))
		}
	}
	return out
}
