package router

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/discovery"
)

// unknownModel is the model label of requests that named no configured
// route, so that client typos cannot grow the label set.
const unknownModel = "unknown"

// durationBuckets are the le bounds of latency histograms, in seconds.
var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// meters holds the metric handles of the request path. Handles are created
// once per model (and per instance) and then used without formatting or
// allocation; an instance's series are removed when it leaves the pool.
type meters struct {
	set *metrics.Set

	mu        sync.Mutex
	models    map[string]*modelMeters
	instances map[string]*instanceMeters
	consumers map[string]*consumerMeters

	unknownCredRef *metrics.Counter // picks of instances naming an unknown credential
}

type modelMeters struct {
	name     string
	set      *metrics.Set
	requests sync.Map // requestKey → *metrics.Counter
	duration *metrics.PrometheusHistogram
	ttft     *metrics.PrometheusHistogram
	// tokens[type][source]: type 0 input, 1 output; source 0 usage, 1 estimated.
	tokens [2][2]*metrics.Counter
	total  atomic.Uint64 // requests of every code
	// cacheHits[0] fresh, [1] stale.
	cacheHits [2]*metrics.Counter
	queueWait *metrics.PrometheusHistogram
}

type requestKey struct {
	code   int
	stream bool
}

type instanceMeters struct {
	set       *metrics.Set
	labels    string
	mu        sync.Mutex
	names     []string
	requests  sync.Map // code → *metrics.Counter
	reconnect *metrics.Counter
}

type consumerMeters struct {
	requests *metrics.Counter
	tokens   [2]*metrics.Counter
}

func newMeters(set *metrics.Set) *meters {
	return &meters{set: set, models: map[string]*modelMeters{},
		instances: map[string]*instanceMeters{}, consumers: map[string]*consumerMeters{},
		unknownCredRef: set.NewCounter(`modelgate_instance_errors_total{kind="unknown_cred_ref"}`)}
}

// model returns the handles of a model label, creating them once.
func (m *meters) model(name string) *modelMeters {
	m.mu.Lock()
	defer m.mu.Unlock()
	if mm, ok := m.models[name]; ok {
		return mm
	}
	l := fmt.Sprintf("model=%q", name)
	mm := &modelMeters{
		name:     name,
		set:      m.set,
		duration: m.set.NewPrometheusHistogramExt("modelgate_request_duration_seconds{"+l+"}", durationBuckets),
		ttft:     m.set.NewPrometheusHistogramExt("modelgate_ttft_seconds{"+l+"}", durationBuckets),
		cacheHits: [2]*metrics.Counter{
			m.set.NewCounter("modelgate_cache_hits_total{" + l + `,kind="fresh"}`),
			m.set.NewCounter("modelgate_cache_hits_total{" + l + `,kind="stale"}`),
		},
		queueWait: m.set.NewPrometheusHistogramExt("modelgate_queue_wait_seconds{"+l+"}", durationBuckets),
	}
	for t, typ := range []string{"input", "output"} {
		for s, src := range []string{"usage", "estimated"} {
			mm.tokens[t][s] = m.set.NewCounter(fmt.Sprintf(`modelgate_tokens_total{%s,type=%q,source=%q}`, l, typ, src))
		}
	}
	m.models[name] = mm
	return mm
}

func (mm *modelMeters) request(code int, stream bool) *metrics.Counter {
	k := requestKey{code, stream}
	if c, ok := mm.requests.Load(k); ok {
		return c.(*metrics.Counter)
	}
	typ := "normal"
	if stream {
		typ = "stream"
	}
	c := mm.set.GetOrCreateCounter(fmt.Sprintf(`modelgate_requests_total{model=%q,code="%d",type=%q}`, mm.name, code, typ))
	mm.requests.Store(k, c)
	return c
}

func (mm *modelMeters) addTokens(u usage) {
	src := 0
	if !u.found {
		src = 1
	}
	mm.tokens[0][src].Add(u.input)
	mm.tokens[1][src].Add(u.output)
}

// instance returns the handles of an instance, creating them once.
func (m *meters) instance(in *discovery.Instance) *instanceMeters {
	m.mu.Lock()
	defer m.mu.Unlock()
	if im, ok := m.instances[in.ID()]; ok {
		return im
	}
	im := &instanceMeters{set: m.set, labels: upstreamLabels(in.ServiceKey(), in.Addr(), in.Version)}
	m.instances[in.ID()] = im
	return im
}

func (im *instanceMeters) request(code int) *metrics.Counter {
	if c, ok := im.requests.Load(code); ok {
		return c.(*metrics.Counter)
	}
	name := "modelgate_upstream_requests_total{" + im.labels + `,code="` + strconv.Itoa(code) + `"}`
	c := im.set.GetOrCreateCounter(name)
	im.mu.Lock()
	im.names = append(im.names, name)
	im.mu.Unlock()
	im.requests.Store(code, c)
	return c
}

// upstreamLabels are the labels of an upstream instance's series. The
// address is "upstream", not "instance", which Prometheus sets to the
// scrape target; version is the instance's metadata version ("" if none).
func upstreamLabels(service, addr, version string) string {
	return fmt.Sprintf("service=%q,upstream=%q,version=%q", service, addr, version)
}

// reconnects counts requests sent again on a fresh connection because the
// instance had closed their pooled one (not failures).
func (im *instanceMeters) reconnects() *metrics.Counter {
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.reconnect == nil {
		name := "modelgate_upstream_reconnects_total{" + im.labels + "}"
		im.reconnect = im.set.GetOrCreateCounter(name)
		im.names = append(im.names, name)
	}
	return im.reconnect
}

// prune removes the series of instances no longer in snap.
func (m *meters) prune(snap *discovery.Snapshot) {
	live := map[string]bool{}
	for _, svc := range snap.Services() {
		for _, in := range svc.Instances {
			live[in.ID()] = true
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, im := range m.instances {
		if live[id] {
			continue
		}
		im.mu.Lock()
		for _, name := range im.names {
			m.set.UnregisterMetric(name)
		}
		im.mu.Unlock()
		delete(m.instances, id)
	}
}

// consumer returns the handles of a consumer, creating them once.
func (m *meters) consumer(name string) *consumerMeters {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cm, ok := m.consumers[name]; ok {
		return cm
	}
	l := fmt.Sprintf("consumer=%q", name)
	cm := &consumerMeters{
		requests: m.set.NewCounter("modelgate_consumer_requests_total{" + l + "}"),
		tokens: [2]*metrics.Counter{
			m.set.NewCounter("modelgate_consumer_tokens_total{" + l + `,type="input"}`),
			m.set.NewCounter("modelgate_consumer_tokens_total{" + l + `,type="output"}`),
		},
	}
	m.consumers[name] = cm
	return cm
}

// writePool writes the pool gauges, computed at scrape time.
func writePool(w io.Writer, snap *discovery.Snapshot) {
	for _, svc := range snap.Services() {
		usable := 0
		for _, in := range svc.Instances {
			if in.Usable() {
				usable++
			}
		}
		metrics.WriteGaugeUint64(w, fmt.Sprintf(`modelgate_pool_instances{service=%q,state="usable"}`, svc.Key), uint64(usable))
		metrics.WriteGaugeUint64(w, fmt.Sprintf(`modelgate_pool_instances{service=%q,state="unusable"}`, svc.Key), uint64(len(svc.Instances)-usable))
	}
	metrics.WriteGaugeUint64(w, "modelgate_pool_version", snap.Version)
}

// writeStale writes 1 while the pool is an unconfirmed snapshot from disk.
func writeStale(w io.Writer, stale bool) {
	v := uint64(0)
	if stale {
		v = 1
	}
	metrics.WriteGaugeUint64(w, "modelgate_pool_stale", v)
}

func seconds(d time.Duration) float64 { return d.Seconds() }

// writeBalancer writes each instance's breaker state and in-flight count,
// and each route's panic picks, computed at scrape time.
func writeBalancer(w io.Writer, b *balancer.Balancer, t *table) {
	for _, st := range b.Instances() {
		l := upstreamLabels(st.Service, st.Addr, st.Version)
		open := uint64(0)
		if st.Breaker == balancer.BreakerOpen {
			open = 1
		}
		metrics.WriteGaugeUint64(w, "modelgate_breaker_open{"+l+"}", open)
		metrics.WriteGaugeUint64(w, "modelgate_instance_in_flight{"+l+"}", uint64(max(st.InFlight, 0)))
		if st.Health != "" {
			up := uint64(0)
			if st.Health == "up" {
				up = 1
			}
			metrics.WriteGaugeUint64(w, "modelgate_instance_healthy{"+l+"}", up)
		}
	}
	for _, rt := range t.routes {
		metrics.WriteCounterUint64(w, fmt.Sprintf("modelgate_panic_picks_total{model=%q}", rt.Model), b.PanicPicks(rt.Model))
	}
}
