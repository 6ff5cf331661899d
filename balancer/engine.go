package balancer

import (
	"fmt"
	"math"
	"time"
)

// EngineLoad is an instance's load as its engine's own metrics endpoint
// reports it (vLLM num_requests_waiting/running, SGLang num_queue_reqs/
// num_running_reqs, llama.cpp requests_deferred/processing).
type EngineLoad struct {
	Waiting int64 // requests queued in the engine, not yet started
	Running int64 // requests the engine is processing
}

// DefaultEngineStale is how long an engine load set by SetEngineLoad
// counts, unless WithEngineStale says otherwise.
const DefaultEngineStale = 3 * time.Second

// SetEngineLoad records instance id's engine load as of now, and
// modelgate's own in-flight count on it at the same moment. Until it is
// older than the stale age (WithEngineStale), policies see the instance's
// load (Candidates.Load) as its in-flight count now plus the engine's
// requests beyond modelgate's own at the scrape (other clients', other
// replicas'); afterwards, in-flight alone. The in-flight part is always
// live: a scrape that saw this replica's own requests does not make the
// instance look busy after they end, which would steer every pick until the
// next scrape elsewhere. It reports
// whether id is in the pool the balancer last built from. It is safe for
// concurrent use and meant for a background scraper, not the request path.
func (b *Balancer) SetEngineLoad(id string, l EngineLoad) bool {
	s := b.statsOf(id)
	if s == nil {
		return false
	}
	s.engOwn.Store(max(s.inflight.Load(), 0))
	s.engWaiting.Store(max(l.Waiting, 0))
	s.engRunning.Store(max(l.Running, 0))
	s.engAt.Store(max(b.env.clock(), 1))
	return true
}

// ClearEngineLoad forgets instance id's engine load at once, for a scrape
// that failed: the instance falls back to in-flight counts.
func (b *Balancer) ClearEngineLoad(id string) {
	if s := b.statsOf(id); s != nil {
		s.engAt.Store(0)
	}
}

// engine returns the engine load of s if it is fresh at clock now.
func (s *stats) engine(e *env, now int64) (EngineLoad, bool) {
	at := s.engAt.Load()
	if at == 0 || now-at > e.stale {
		return EngineLoad{}, false
	}
	return EngineLoad{Waiting: s.engWaiting.Load(), Running: s.engRunning.Load()}, true
}

// load is the instance's load at clock now: in-flight, plus the requests
// its engine held beyond this replica's own at the last fresh scrape.
func (s *stats) load(e *env, now int64) int64 {
	n := max(s.inflight.Load(), 0)
	if at := s.engAt.Load(); at != 0 && now-at <= e.stale {
		n += max(s.engWaiting.Load()+s.engRunning.Load()-s.engOwn.Load(), 0)
	}
	return n
}

// EngineLoad returns candidate i's engine load and whether it is fresh.
func (c Candidates) EngineLoad(i int) (EngineLoad, bool) {
	return c.nodes[i].st.engine(c.env, c.env.clock())
}

// Load returns candidate i's load: its in-flight count, plus, while its
// engine load is fresh, the engine's requests beyond modelgate's own at the
// scrape (see SetEngineLoad).
func (c Candidates) Load(i int) int64 { return c.nodes[i].st.load(c.env, c.env.clock()) }

// EngineSettings configures the engine-aware policy (package engine): the
// weights of its scorers and its bounded load. Zero weights all together
// mean the defaults 3, 2, 1; a negative weight is an error.
type EngineSettings struct {
	// Prefix weighs prefix-cache affinity: the share of the prompt's
	// leading blocks that the instance served most recently.
	Prefix float64
	// Queue weighs the instance's load (Candidates.Load, per unit of Nacos
	// weight): it scores 1/(1+load).
	Queue float64
	// Latency weighs the moving average of time to first token: the
	// fastest average over the instance's, 1 within 1.5× of the fastest or
	// without samples.
	Latency float64
	// LoadFactor bounds the load: an instance is passed over, whatever its
	// score, while its load would exceed LoadFactor times the mean load of
	// the available candidates (per unit of weight, counting this request,
	// rounded up). 0 means 1.5; otherwise it must be ≥ 1.
	LoadFactor float64
}

// Default engine-policy settings.
const (
	DefaultPrefixWeight  = 3
	DefaultQueueWeight   = 2
	DefaultLatencyWeight = 1
	DefaultLoadFactor    = 1.5
)

// WithDefaults returns s with its documented defaults filled.
func (s EngineSettings) WithDefaults() EngineSettings {
	if s.Prefix == 0 && s.Queue == 0 && s.Latency == 0 {
		s.Prefix, s.Queue, s.Latency = DefaultPrefixWeight, DefaultQueueWeight, DefaultLatencyWeight
	}
	if s.LoadFactor == 0 {
		s.LoadFactor = DefaultLoadFactor
	}
	return s
}

// Validate reports the first bad field of s, defaults filled.
func (s EngineSettings) Validate() error {
	s = s.WithDefaults()
	for _, f := range []struct {
		name string
		v    float64
	}{{"prefix", s.Prefix}, {"queue", s.Queue}, {"latency", s.Latency}} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("%w: engine policy: weight %s = %v, want ≥ 0", ErrBadRoute, f.name, f.v)
		}
	}
	if !(s.LoadFactor >= 1) || math.IsInf(s.LoadFactor, 0) {
		return fmt.Errorf("%w: engine policy: load_factor = %v, want ≥ 1", ErrBadRoute, s.LoadFactor)
	}
	return nil
}

// EnginePolicy returns the engine-aware policy that package engine
// documents; it lives here because it reads the balancer's prefix index and
// per-instance engine loads. Settings are normalised by WithDefaults; invalid
// ones (see Validate) are replaced by the defaults.
func EnginePolicy(s EngineSettings) Policy {
	if s.Validate() != nil {
		s = EngineSettings{}
	}
	return enginePolicy{s.WithDefaults()}
}

type enginePolicy struct{ s EngineSettings }

func (enginePolicy) Name() string { return "engine" }

func (p enginePolicy) Build(set Candidates) Selector {
	sel := &engineSelector{s: p.s, fallback: p2c{}.Build(set)}
	if p.s.Prefix > 0 && set.Len() > 0 {
		sel.index = set.env.prefixes.get(set.nodes[0].in.ServiceKey())
		sel.serials = make([]uint32, set.Len())
		for i := range set.nodes {
			sel.serials[i] = set.nodes[i].st.serial
		}
	}
	return sel
}

// maxScored bounds the candidates the engine selector scores on its stack;
// larger sets are served by power of two choices.
const maxScored = 128

// engineSelector scores every available candidate of a set; see package
// engine.
type engineSelector struct {
	s        EngineSettings
	index    *prefixIndex // nil when prefixes weigh nothing
	serials  []uint32     // of the set's candidates, to find the index's answer among them
	fallback Selector
}

// Select is package engine's Selector.Select. It does not allocate: the
// prompt's block hashes and the per-candidate figures live on its stack.
//
// The candidate that served the longest prefix of the prompt (its home)
// is the only one with a prefix score. When the home is light enough that
// the bounded load cannot exclude it and its score beats the best any
// other candidate could reach, it wins without the others being scored;
// otherwise every available candidate is scored.
func (s *engineSelector) Select(c Candidates) int {
	n := len(c.nodes)
	if n > maxScored {
		return s.fallback.Select(c)
	}
	var hs [MaxPrefixBlocks]uint64
	k, home, depth := 0, -1, 0
	if s.index != nil && c.req != nil && len(c.req.Prompt) >= PrefixBlockSize {
		k = hashBlocks(c.env.seed, c.req.Prompt, &hs)
		home, depth = s.home(&c, hs[:k])
	}
	now := c.env.clock()
	best := -1
	if home >= 0 {
		best = s.settled(&c, home, float64(depth)/float64(k), now)
	}
	if best < 0 {
		if best = s.score(&c, home, depth, k, now); best < 0 {
			return -1
		}
	}
	if k > 0 {
		s.index.record(hs[:k], c.nodes[best].st.serial)
	}
	return best
}

// home returns the available candidate that served the longest prefix of
// the prompt whose block hashes are hs, and that prefix's length in
// blocks; -1 when there is none.
func (s *engineSelector) home(c *Candidates, hs []uint64) (int, int) {
	serial, depth := s.index.longest(hs)
	if serial == 0 {
		return -1, 0
	}
	for i, v := range s.serials {
		if v == serial {
			if !c.available(i) {
				break
			}
			return i, depth
		}
	}
	return -1, 0
}

// settled returns home when it wins whatever the others' figures: its load
// is below its weight (so within any bound, which is at least 1) and its
// score, counting no latency score, exceeds the most any other candidate
// can score (a full queue and latency score, no prefix). Otherwise -1.
func (s *engineSelector) settled(c *Candidates, home int, share float64, now int64) int {
	nd := &c.nodes[home]
	l := float64(nd.st.load(c.env, now))
	if (l+1)*nd.inv > 1 {
		return -1
	}
	if s.s.Prefix*share+s.s.Queue/(1+l*nd.inv) > s.s.Queue+s.s.Latency {
		return home
	}
	return -1
}

// score scores every available candidate, home (-1 for none) matching
// depth of the prompt's k blocks, and returns the best within the bounded
// load; -1 when none is available.
//
// Among the candidates other than home whose latency scores in full (the
// usual case), the best is the least loaded, first in a random rotation:
// their scores are compared by load, and only the winner's and the others'
// (home, slow ones) are computed.
func (s *engineSelector) score(c *Candidates, home, depth, k int, now int64) int {
	n := len(c.nodes)
	var (
		load    [maxScored]float64 // per unit of weight; -1 when unavailable
		lat     [maxScored]int64
		sumLoad int64
		sumW    float64
		minLat  = int64(math.MaxInt64)
		avail   int
		others  = math.Inf(1) // the least load per unit of weight but home's
	)
	plain := c.plain()
	for i := range n {
		nd := &c.nodes[i]
		var ok bool
		if plain && nd.st.brk.closed() { // available(i), inline
			ok = c.availableClosed(nd)
		} else {
			ok = c.available(i)
		}
		if !ok {
			load[i] = -1
			continue
		}
		l := nd.st.load(c.env, now)
		sumLoad += l
		sumW += nd.weight
		load[i] = float64(l) * nd.inv
		if i != home {
			others = min(others, load[i])
		}
		if lat[i] = nd.st.ewma.Load(); lat[i] > 0 {
			minLat = min(minLat, lat[i])
		}
		avail++
	}
	if avail == 0 {
		return -1
	}
	// Bounded load: an instance may carry at most LoadFactor × the mean
	// (this request included), per unit of weight, rounded up.
	capacity := math.Ceil(s.s.LoadFactor * float64(sumLoad+1) / sumW)
	// score is candidate i's score. Queue and latency scores are ratios,
	// not min-max spreads: one request more than the others, or a somewhat
	// slower average, costs a little, so that a long prefix match outweighs
	// them. Within 1.5× of the fastest is a tie (as in p2c): noise in the
	// averages must not outweigh a request more in a queue.
	fullLatency := func(i int) bool { return lat[i] <= 0 || minLat == math.MaxInt64 || 2*lat[i] <= 3*minLat }
	score := func(i int) float64 {
		v := s.s.Queue / (1 + load[i])
		if i == home {
			v += s.s.Prefix * float64(depth) / float64(k)
		}
		if fullLatency(i) {
			return v + s.s.Latency
		}
		return v + s.s.Latency*float64(minLat)/float64(lat[i])
	}
	// Home within the bound wins outright when its score beats the most
	// another could reach: the least load's queue score and a full latency
	// score.
	if home >= 0 && load[home] >= 0 && (math.IsInf(others, 1) ||
		load[home]+c.nodes[home].inv <= capacity && score(home) > s.s.Queue/(1+others)+s.s.Latency) {
		return home
	}
	// The best within the bound and the best of all (for when every
	// candidate is over the bound, weights skewed), each with its score and
	// its place in the rotation (the earlier wins a tie, but home wins any).
	type pick struct {
		i, at int
		score float64
	}
	better := func(a, b pick) bool {
		return b.i < 0 || (a.i >= 0 && (a.score > b.score || (a.score == b.score && (a.i == home || (b.i != home && a.at < b.at)))))
	}
	// lighter reports whether i scores more than j, both with a full
	// latency score and neither home: with no queue weight they tie.
	lighter := func(i, j int) bool { return s.s.Queue > 0 && load[i] < load[j] }
	in, all := pick{i: -1}, pick{i: -1}
	fastIn, fastAny := pick{i: -1}, pick{i: -1} // least loaded with a full latency score, not home
	rot := int(c.env.rand() % uint64(n))
	for j := range n {
		i := j + rot
		if i >= n {
			i -= n
		}
		if load[i] < 0 {
			continue
		}
		within := load[i]+c.nodes[i].inv <= capacity
		if i != home && fullLatency(i) {
			if fastAny.i < 0 || lighter(i, fastAny.i) {
				fastAny = pick{i: i, at: j}
			}
			if within && (fastIn.i < 0 || lighter(i, fastIn.i)) {
				fastIn = pick{i: i, at: j}
			}
			continue
		}
		p := pick{i: i, at: j, score: score(i)}
		if better(p, all) {
			all = p
		}
		if within && better(p, in) {
			in = p
		}
	}
	for _, f := range [...]struct{ fast, best *pick }{{&fastIn, &in}, {&fastAny, &all}} {
		if f.fast.i >= 0 {
			f.fast.score = score(f.fast.i)
			if better(*f.fast, *f.best) {
				*f.best = *f.fast
			}
		}
	}
	if in.i < 0 {
		return all.i // everyone is over the bound (weights skewed): the best anyway
	}
	return in.i
}
