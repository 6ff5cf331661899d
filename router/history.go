package router

import (
	"sync"
	"time"
)

// The status page's history: one point per route every historyEvery, the
// last historySpan of them.
const (
	historyEvery = 10 * time.Second
	historySpan  = 15 * time.Minute
)

// reading is what the sampler reads at one instant: the cumulative counters
// the request path keeps anyway, and a few instantaneous figures. Taking it
// costs the request path nothing.
type reading struct {
	at        time.Time
	routes    map[string]routeReading
	instances map[string]instanceReading // by instance ID
}

type routeReading struct {
	service  string
	requests uint64 // replies of every status
	errors   uint64 // replies with status ≥ 500
	tokens   uint64 // input and output
	ttftP95  time.Duration
	// canary is the version of the route's canary overlay ("" for none)
	// and canaryShare its configured share in percent.
	canary      string
	canaryShare float64
}

type instanceReading struct {
	service, version string
	finished         uint64        // attempts reported done
	failures         uint64        // of them, counted as failures
	ewma             time.Duration // the balancer's latency average
}

// point is one route's figures over one sampling interval.
type point struct {
	at       time.Time
	secs     float64 // length of the interval
	requests uint64
	errors   uint64
	tokens   uint64
	ttftP95  time.Duration // over the degrade window ending at at; 0 if none measured
	// versions counts the attempts of the route's service by instance
	// version in the interval (all of the service's routes together).
	versions map[string]uint64
	// canary is the overlay's version ("" for none), canaryShare its
	// configured share and canaryActual the share of the attempts it got
	// (-1 without a canary or without attempts), both in percent.
	canary       string
	canaryShare  float64
	canaryActual float64
}

// ring holds a route's last points, oldest first once read.
type ring struct {
	buf  []point
	next int
	full bool
}

func (r *ring) add(p point) {
	r.buf[r.next] = p
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

func (r *ring) points() []point {
	if !r.full {
		return append([]point(nil), r.buf[:r.next]...)
	}
	return append(append([]point(nil), r.buf[r.next:]...), r.buf[:r.next]...)
}

// instanceTrack remembers when an instance last had a success and a
// failure, at the sampler's granularity, and its latency from successes
// alone: the balancer's average at the end of the last interval whose
// attempts all succeeded (a failure feeds the average a penalty).
type instanceTrack struct {
	lastSuccess, lastFailure time.Time
	latency                  time.Duration // 0: no clean interval yet
}

// history keeps the status page's recent figures: each sample turns the
// counters' growth since the previous reading into one point per route, in
// a ring of fixed size. Memory is bounded by the routes and the versions of
// their services. It is safe for concurrent use.
type history struct {
	mu        sync.Mutex
	every     time.Duration
	size      int
	prev      *reading
	routes    map[string]*ring
	instances map[string]*instanceTrack
}

func newHistory(every, span time.Duration) *history {
	return &history{every: every, size: max(1, int(span/every)), routes: map[string]*ring{}, instances: map[string]*instanceTrack{}}
}

// delta is cur − prev of a counter, or cur when the counter went back
// (it was recreated).
func delta(cur, prev uint64) uint64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// add folds one reading into the history. Readings must come in time
// order; one less than half an interval after the previous is ignored (so
// that an interval too short to measure a rate leaves no point). A route or instance
// seen for the first time only sets the baseline of its counters; routes
// and instances gone from the reading are forgotten.
func (h *history) add(rd reading) {
	h.mu.Lock()
	defer h.mu.Unlock()
	prev := h.prev
	if prev != nil && rd.at.Sub(prev.at) < h.every/2 {
		return
	}
	h.prev = &rd
	if prev == nil {
		return
	}
	secs := rd.at.Sub(prev.at).Seconds()
	bySvc := map[string]map[string]uint64{} // service → version → attempts
	for id, cur := range rd.instances {
		tr := h.instances[id]
		if tr == nil {
			tr = &instanceTrack{}
			h.instances[id] = tr
		}
		old, ok := prev.instances[id]
		if !ok {
			continue
		}
		done, failed := delta(cur.finished, old.finished), delta(cur.failures, old.failures)
		if done > failed {
			tr.lastSuccess = rd.at
			if failed == 0 && cur.ewma > 0 {
				tr.latency = cur.ewma
			}
		}
		if failed > 0 {
			tr.lastFailure = rd.at
		}
		if done > 0 {
			v := bySvc[cur.service]
			if v == nil {
				v = map[string]uint64{}
				bySvc[cur.service] = v
			}
			v[cur.version] += done
		}
	}
	for id := range h.instances {
		if _, ok := rd.instances[id]; !ok {
			delete(h.instances, id)
		}
	}
	for name, cur := range rd.routes {
		old, ok := prev.routes[name]
		if !ok {
			continue
		}
		p := point{at: rd.at, secs: secs, requests: delta(cur.requests, old.requests), errors: delta(cur.errors, old.errors),
			tokens: delta(cur.tokens, old.tokens), ttftP95: cur.ttftP95, versions: bySvc[cur.service],
			canary: cur.canary, canaryShare: cur.canaryShare, canaryActual: -1}
		if p.canary != "" {
			var all uint64
			for _, n := range p.versions {
				all += n
			}
			if all > 0 {
				p.canaryActual = 100 * float64(p.versions[p.canary]) / float64(all)
			}
		}
		r := h.routes[name]
		if r == nil {
			r = &ring{buf: make([]point, h.size)}
			h.routes[name] = r
		}
		r.add(p)
	}
	for name := range h.routes {
		if _, ok := rd.routes[name]; !ok {
			delete(h.routes, name)
		}
	}
}

// points returns a route's points, oldest first.
func (h *history) points(route string) []point {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.routes[route]; r != nil {
		return r.points()
	}
	return nil
}

// track returns what the history knows of an instance.
func (h *history) track(id string) instanceTrack {
	h.mu.Lock()
	defer h.mu.Unlock()
	if tr := h.instances[id]; tr != nil {
		return *tr
	}
	return instanceTrack{}
}

// summary is a route's figures over its last points.
type summary struct {
	secs         float64
	requests     uint64
	ReqPerSec    float64
	ErrorRatio   float64 // -1: no requests
	TokensPerSec float64
	TTFTP95      time.Duration // of the last point
	// Split is each version's share of the attempts, in percent (nil: none).
	Split map[string]float64
}

// summarize folds the points that end within span of the last one.
func summarize(pts []point, span time.Duration) summary {
	s := summary{ErrorRatio: -1}
	if len(pts) == 0 {
		return s
	}
	last := pts[len(pts)-1]
	s.TTFTP95 = last.ttftP95
	var errs, tokens, attempts uint64
	versions := map[string]uint64{}
	for _, p := range pts {
		if last.at.Sub(p.at) >= span {
			continue
		}
		s.secs += p.secs
		s.requests += p.requests
		errs += p.errors
		tokens += p.tokens
		for v, n := range p.versions {
			versions[v] += n
			attempts += n
		}
	}
	if s.secs > 0 {
		s.ReqPerSec, s.TokensPerSec = float64(s.requests)/s.secs, float64(tokens)/s.secs
	}
	if s.requests > 0 {
		s.ErrorRatio = float64(errs) / float64(s.requests)
	}
	if attempts > 0 {
		s.Split = map[string]float64{}
		for v, n := range versions {
			s.Split[v] = 100 * float64(n) / float64(attempts)
		}
	}
	return s
}

// wallClock schedules the status page's samples.
type wallClock struct{}

func (wallClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
