package scrape

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/discovery"
)

// Metadata keys an instance sets to be scraped.
const (
	MetaEngine      = "engine"       // vllm, sglang or llamacpp (Engines)
	MetaMetricsPath = "metrics_path" // default DefaultMetricsPath
)

// DefaultMetricsPath is where engines serve their metrics.
const DefaultMetricsPath = "/metrics"

// Sink receives engine loads; *balancer.Balancer is one.
type Sink interface {
	SetEngineLoad(id string, l balancer.EngineLoad) bool
	ClearEngineLoad(id string)
}

// Settings configure a Scraper; zero fields take the defaults stated.
type Settings struct {
	Interval    time.Duration // between rounds; default 500ms
	Timeout     time.Duration // per scrape, connect to last byte; default 1s
	Concurrency int           // scrapes at once; default 8
	MaxBody     int64         // bytes read of one endpoint's reply; default 4 MiB
}

func (s Settings) withDefaults() Settings {
	if s.Interval <= 0 {
		s.Interval = 500 * time.Millisecond
	}
	if s.Timeout <= 0 {
		s.Timeout = time.Second
	}
	if s.Concurrency <= 0 {
		s.Concurrency = 8
	}
	if s.MaxBody <= 0 {
		s.MaxBody = 4 << 20
	}
	return s
}

// Scrape results, the label of modelgate_engine_scrapes_total.
const (
	ResultOK      = "ok"
	ResultDown    = "down"    // connection refused, reset, DNS
	ResultTimeout = "timeout" // no complete reply within Timeout
	ResultStatus  = "status"  // a reply other than 200
	ResultGarbage = "garbage" // not Prometheus text, or no queue metrics of the engine
)

var results = []string{ResultOK, ResultDown, ResultTimeout, ResultStatus, ResultGarbage}

// Scraper scrapes the instances of a pool that name their engine. Create
// it with New and start it with Run; its methods are safe for concurrent
// use.
type Scraper struct {
	pool   *discovery.Pool
	sink   Sink
	set    Settings
	client *http.Client
	log    zerolog.Logger
	rounds atomic.Uint64

	mu      sync.Mutex
	targets map[string]*target // by instance ID
}

type target struct {
	id, service, addr, url string
	engine                 *Engine
	// Guarded by Scraper.mu.
	reading  Reading
	at       time.Time // of the last good scrape
	fresh    bool      // the last scrape was good
	lastErr  string
	counts   [5]uint64 // by results
	inFlight bool
}

// Option configures a Scraper.
type Option func(*Scraper)

// WithLogger sets the logger for targets turning bad and good (default
// none).
func WithLogger(l zerolog.Logger) Option { return func(s *Scraper) { s.log = l } }

// WithTransport replaces the HTTP transport (default: a private one with
// at most one connection per instance), for tests or TLS settings.
func WithTransport(rt http.RoundTripper) Option {
	return func(s *Scraper) { s.client.Transport = rt }
}

// New returns a scraper of pool feeding sink.
func New(pool *discovery.Pool, sink Sink, set Settings, opts ...Option) *Scraper {
	set = set.withDefaults()
	s := &Scraper{pool: pool, sink: sink, set: set, log: zerolog.Nop(), targets: map[string]*target{},
		client: &http.Client{Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: set.Timeout}).DialContext,
			MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, IdleConnTimeout: 4 * set.Interval,
			ResponseHeaderTimeout: set.Timeout, DisableCompression: true,
		}}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Run scrapes every Interval until ctx is done, then returns ctx's error.
// A round waits at most Timeout for its slowest scrape; an instance whose
// previous scrape is still running is skipped.
func (s *Scraper) Run(ctx context.Context) error {
	defer s.client.CloseIdleConnections()
	tick := time.NewTicker(s.set.Interval)
	defer tick.Stop()
	sem := make(chan struct{}, s.set.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		for _, t := range s.sync() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			wg.Go(func() {
				defer func() { <-sem }()
				s.scrape(ctx, t)
			})
		}
		wg.Wait()
		s.rounds.Add(1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Rounds returns how many rounds have finished.
func (s *Scraper) Rounds() uint64 { return s.rounds.Load() }

// sync updates the targets from the pool and returns those to scrape now.
func (s *Scraper) sync() []*target {
	snap := s.pool.Snapshot()
	live := map[string]bool{}
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []*target
	for _, svc := range snap.Services() {
		for _, in := range svc.Instances {
			e, ok := Engines[in.Metadata[MetaEngine]]
			if !ok {
				continue
			}
			id := in.ID()
			live[id] = true
			u := metricsURL(in)
			t := s.targets[id]
			if t == nil || t.url != u || t.engine.Name != e.Name {
				t = &target{id: id, service: in.ServiceKey(), addr: in.Addr(), url: u, engine: &e}
				s.targets[id] = t
			}
			if !t.inFlight {
				t.inFlight = true
				due = append(due, t)
			}
		}
	}
	for id := range s.targets {
		if !live[id] {
			delete(s.targets, id)
		}
	}
	return due
}

func metricsURL(in *discovery.Instance) string {
	p := in.Metadata[MetaMetricsPath]
	if p == "" {
		p = DefaultMetricsPath
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return in.Scheme + "://" + in.Addr() + p
}

// scrape reads one target and feeds the sink.
func (s *Scraper) scrape(ctx context.Context, t *target) {
	r, res, err := s.fetch(ctx, t)
	if ctx.Err() != nil && res != ResultOK {
		s.mu.Lock()
		t.inFlight = false
		s.mu.Unlock()
		return // shutting down: not the instance's fault
	}
	if res == ResultOK {
		s.sink.SetEngineLoad(t.id, balancer.EngineLoad{Waiting: int64(math.Round(r.Waiting)), Running: int64(math.Round(r.Running))})
	} else {
		s.sink.ClearEngineLoad(t.id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.inFlight = false
	t.counts[slices.Index(results, res)]++
	was := t.fresh
	t.fresh = res == ResultOK
	if t.fresh {
		t.reading, t.at, t.lastErr = r, time.Now(), ""
	} else {
		t.lastErr = err.Error()
	}
	if was != t.fresh {
		ev := s.log.Info()
		if !t.fresh {
			ev = s.log.Warn().Str("result", res).Str("error", t.lastErr)
		}
		ev.Str("instance", t.id).Str("engine", t.engine.Name).Bool("fresh", t.fresh).Msg("engine metrics")
	}
}

// fetch GETs t's endpoint and reads it.
func (s *Scraper) fetch(ctx context.Context, t *target) (Reading, string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.set.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return Reading{}, ResultDown, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return Reading{}, classify(err), err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.set.MaxBody))
	switch {
	case err != nil:
		return Reading{}, classify(err), err
	case resp.StatusCode != http.StatusOK:
		return Reading{}, ResultStatus, fmt.Errorf("scrape: status %d", resp.StatusCode)
	}
	r, err := t.engine.read(body)
	if err != nil {
		return Reading{}, ResultGarbage, err
	}
	return r, ResultOK, nil
}

func classify(err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return ResultTimeout
	}
	return ResultDown
}

// Stat is one scraped instance.
type Stat struct {
	ID      string // "GROUP@@service#host:port"
	Service string // pool key
	Addr    string
	Engine  string
	URL     string
	// Fresh is true when the last scrape succeeded; the balancer then uses
	// the engine's queue, otherwise the instance's in-flight count.
	Fresh     bool
	Reading             // of the last good scrape
	At        time.Time // of the last good scrape; zero if none
	LastError string    // of the last scrape, "" if it was good
	Scrapes   map[string]uint64
}

// Stats returns every scraped instance, by ID. It allocates; call it from
// the admin or metrics path.
func (s *Scraper) Stats() []Stat {
	s.mu.Lock()
	out := make([]Stat, 0, len(s.targets))
	for _, t := range s.targets {
		st := Stat{ID: t.id, Service: t.service, Addr: t.addr, Engine: t.engine.Name, URL: t.url, Fresh: t.fresh,
			Reading: t.reading, At: t.at, LastError: t.lastErr, Scrapes: map[string]uint64{}}
		if t.at.IsZero() {
			st.Reading = Reading{KVUsage: -1, CacheHitRatio: -1, CacheHits: -1, CacheQueries: -1}
		}
		for i, r := range results {
			st.Scrapes[r] = t.counts[i]
		}
		out = append(out, st)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Stat returns the scraped view of instance id, if it is scraped.
func (s *Scraper) Stat(id string) (Stat, bool) {
	for _, st := range s.Stats() {
		if st.ID == id {
			return st, true
		}
	}
	return Stat{}, false
}

// WritePrometheus writes each scraped instance's engine gauges and its
// scrapes by result, family by family (labels service, upstream, engine):
//
//	modelgate_engine_metrics_fresh           1 while the engine's queue is used, 0 when in-flight counts are
//	modelgate_engine_requests_waiting        the engine's queue (last good scrape)
//	modelgate_engine_requests_running
//	modelgate_engine_kv_cache_usage_ratio
//	modelgate_engine_prefix_cache_hit_ratio  from the engine's own counters
//	modelgate_engine_scrapes_total{result=ok|down|timeout|status|garbage}
func (s *Scraper) WritePrometheus(w io.Writer) {
	stats := s.Stats()
	labels := make([]string, len(stats))
	for i, st := range stats {
		labels[i] = fmt.Sprintf("service=%q,upstream=%q,engine=%q", st.Service, st.Addr, st.Engine)
	}
	for i, st := range stats {
		fresh := uint64(0)
		if st.Fresh {
			fresh = 1
		}
		metrics.WriteGaugeUint64(w, "modelgate_engine_metrics_fresh{"+labels[i]+"}", fresh)
	}
	for _, g := range []struct {
		name string
		v    func(*Stat) float64
	}{
		{"modelgate_engine_requests_waiting", func(st *Stat) float64 { return st.Waiting }},
		{"modelgate_engine_requests_running", func(st *Stat) float64 { return st.Running }},
		{"modelgate_engine_kv_cache_usage_ratio", func(st *Stat) float64 { return st.KVUsage }},
		{"modelgate_engine_prefix_cache_hit_ratio", func(st *Stat) float64 { return st.CacheHitRatio }},
	} {
		for i := range stats {
			if v := g.v(&stats[i]); !stats[i].At.IsZero() && v >= 0 {
				metrics.WriteGaugeFloat64(w, g.name+"{"+labels[i]+"}", v)
			}
		}
	}
	for i, st := range stats {
		for _, r := range results {
			metrics.WriteCounterUint64(w, "modelgate_engine_scrapes_total{"+labels[i]+`,result="`+r+`"}`, st.Scrapes[r])
		}
	}
}
