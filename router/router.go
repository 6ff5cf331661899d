package router

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/degrade"
	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/health"
	_ "github.com/modelgate/modelgate/internal/quietinit" // no VictoriaMetrics log line at init
	"github.com/modelgate/modelgate/internal/tick"
	"github.com/modelgate/modelgate/scrape"
)

// Router serves the OpenAI API over a pool of instances. Create it with New,
// start its housekeeping with Run, and serve Handler with a fasthttp.Server.
// Handler is safe for concurrent use; Reload swaps the route table without
// disturbing requests in flight.
type Router struct {
	pool        *discovery.Pool
	picker      balancer.Picker
	bal         *balancer.Balancer // the default picker; nil with WithPicker
	scraper     *scrape.Scraper    // engine metrics into bal; nil with WithPicker
	prober      *health.Prober     // active health checks into bal; nil with WithPicker or disabled
	balOpts     []balancer.Option
	gateOpts    []degrade.Option
	canary      *canary.Controller // rollouts; nil with WithPicker
	canOpts     []canary.Option
	log         zerolog.Logger
	now         func() time.Time
	clock       degrade.Clock // nil: the wall clock
	upstreams   *upstreams
	meters      *meters
	history     *history      // the status page's last 15 minutes
	sampleEvery time.Duration // how often Run samples into history: historyEvery
	// sampleClock schedules the samples: the wall clock, also with
	// WithClock (whose tests count the timers on their clock); the
	// readings are stamped with now.
	sampleClock tick.Clock
	gate        *degrade.Gate
	access      zerolog.Logger
	accessOut   *lineWriter // the access log's buffered writer, with WithAccessLogWriter
	cfg         atomic.Pointer[Config]
	routes      atomic.Pointer[table]
	// badCredRefs holds "ID|cred_ref" of the instances already logged for
	// naming an unknown credential.
	badCredRefs sync.Map
}

// Option configures a Router.
type Option func(*Router)

// WithLogger sets the logger (default: none).
func WithLogger(l zerolog.Logger) Option { return func(r *Router) { r.log = l } }

// WithGateOptions passes options to the degradation gate, such as shared
// quota and cache stores (degrade.WithQuotaStore, degrade.WithCacheStore).
func WithGateOptions(opts ...degrade.Option) Option {
	return func(r *Router) { r.gateOpts = append(r.gateOpts, opts...) }
}

// WithPicker replaces the default balancer (balancer.New over the routes)
// with p. A custom picker gets each route's name in Request.Route and only
// the request's own tags in Request.Tags; it applies route tags itself.
func WithPicker(p balancer.Picker) Option { return func(r *Router) { r.picker = p } }

// WithBalancerOptions configures the default balancer: policy, breaker
// settings, logger.
func WithBalancerOptions(opts ...balancer.Option) Option {
	return func(r *Router) { r.balOpts = append(r.balOpts, opts...) }
}

// WithMetrics registers the router's metrics in set (default: a private
// set, which WritePrometheus still serves).
func WithMetrics(set *metrics.Set) Option { return func(r *Router) { r.meters = newMeters(set) } }

// WithAccessLog sets the access logger, one JSON line per request
// (default: none).
func WithAccessLog(l zerolog.Logger) Option { return func(r *Router) { r.access = l } }

// WithAccessLogWriter writes the access log, one JSON line per request
// with a timestamp, to out through a buffer that never blocks a request:
// Run writes it out and flushes it when its context ends; lines that find
// the buffer (1 MiB) full are dropped and counted in
// modelgate_access_log_dropped_total. It replaces WithAccessLog.
func WithAccessLogWriter(out io.Writer) Option {
	return func(r *Router) {
		r.accessOut = newLineWriter(out, accessLogBuffer)
		r.access = zerolog.New(r.accessOut).With().Timestamp().Logger()
	}
}

// WithClock sets the clock of the whole router (default the wall clock):
// request times, the default balancer's breakers, and the degrade gate's
// ticks, queue deadlines, signal windows and quota refills. Tests drive
// them all with one fake clock. It must be safe for concurrent use.
func WithClock(clk degrade.Clock) Option { return func(r *Router) { r.clock, r.now = clk, clk.Now } }

// WithUpstreamTLS sets the TLS configuration for instances with scheme
// https (default: the system roots).
func WithUpstreamTLS(c *tls.Config) Option { return func(r *Router) { r.upstreams.tlsConfig = c } }

// WithDialer replaces the TCP dialer used to reach instances, for unix
// sockets, proxies or in-memory tests (default: TCP with the connect timeout).
func WithDialer(dial func(addr string) (net.Conn, error)) Option {
	return func(r *Router) { r.upstreams.dialer = dial }
}

// New returns a Router over pool. It picks instances with a
// balancer.Balancer over its routes unless WithPicker says otherwise.
func New(pool *discovery.Pool, cfg Config, opts ...Option) (*Router, error) {
	cfg = cfg.clone() // the caller's slices and maps stay the caller's
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Router{pool: pool, log: zerolog.Nop(), access: zerolog.Nop(), now: time.Now,
		upstreams: newUpstreams(cfg.ConnectTimeout, cfg.MaxConnsPerInstance, nil), meters: newMeters(metrics.NewSet()),
		history: newHistory(historyEvery, historySpan), sampleEvery: historyEvery, sampleClock: wallClock{}}
	for _, o := range opts {
		o(r)
	}
	r.upstreams.onReconnect = func(in *discovery.Instance) { r.meters.instance(in).reconnects().Inc() }
	gateOpts := []degrade.Option{degrade.WithLogger(r.log)}
	if r.clock != nil {
		r.balOpts = append([]balancer.Option{balancer.WithClock(r.clock.Now)}, r.balOpts...)
		gateOpts = append(gateOpts, degrade.WithClock(r.clock))
	}
	if r.picker == nil {
		r.bal = balancer.New(pool, balancerRoutes(cfg.Routes), append([]balancer.Option{
			balancer.WithEngineStale(cfg.EngineMetrics.Stale), balancer.WithHealthFailures(cfg.Health.Failures)}, r.balOpts...)...)
		r.picker = r.bal
		r.scraper = scrape.New(pool, r.bal, scrape.Settings{Interval: cfg.EngineMetrics.Interval,
			Timeout: cfg.EngineMetrics.Timeout, Concurrency: cfg.EngineMetrics.Concurrency}, scrape.WithLogger(r.log))
		if !cfg.Health.Disabled {
			r.prober = health.New(pool, r.bal, health.Settings{Interval: cfg.Health.Interval, Timeout: cfg.Health.Timeout,
				Concurrency: cfg.Health.Concurrency}, health.WithLogger(r.log), health.WithTLS(r.upstreams.tlsConfig))
		}
		r.canary = canary.New(r.bal, append([]canary.Option{canary.WithClock(r.now), canary.WithLogger(r.log)}, r.canOpts...)...)
	}
	var fleet degrade.Fleet = pool
	if r.bal != nil {
		fleet = r.bal
	}
	gate, err := degrade.NewGate(fleet, gateConfig(&cfg), append(gateOpts, r.gateOpts...)...)
	if err != nil {
		return nil, err
	}
	r.gate = gate
	r.install(&cfg)
	return r, nil
}

// balancerRoutes are the balancer's view of the routes.
func balancerRoutes(routes []Route) []balancer.Route {
	out := make([]balancer.Route, 0, len(routes))
	for _, rt := range routes {
		out = append(out, balancer.Route{Name: rt.Model, Service: rt.serviceKey, Models: rt.names(),
			Tags: rt.Tags, Prefer: rt.Prefer, Split: rt.Split, Policy: rt.policy(), Breaker: rt.Breaker})
	}
	return out
}

// Balancer returns the default balancer, or nil with WithPicker.
func (r *Router) Balancer() *balancer.Balancer { return r.bal }

// install makes a validated cfg the one in force.
func (r *Router) install(cfg *Config) {
	r.warnInsecure(cfg)
	t := newTable(cfg.Routes)
	for _, rt := range t.routes {
		rt.meters = r.meters.model(rt.Model)
	}
	r.cfg.Store(cfg)
	r.routes.Store(t)
	r.setCanaries(t)
}

// Reload validates cfg and, if it is good, serves it from the next request
// on. A bad cfg changes nothing and is returned as an error.
func (r *Router) Reload(cfg Config) error {
	cfg = cfg.clone() // a failed reload must leave nothing of cfg behind
	if err := cfg.Validate(); err != nil {
		return err
	}
	if r.bal != nil {
		if err := r.bal.SetRoutes(balancerRoutes(cfg.Routes)); err != nil {
			return err
		}
	}
	if err := r.gate.Reload(gateConfig(&cfg)); err != nil {
		return err // Validate has checked it: not reached
	}
	r.install(&cfg)
	return nil
}

// Config returns a copy of the configuration in force, defaults filled;
// changing it changes nothing until it is passed to Reload.
func (r *Router) Config() Config { return r.cfg.Load().clone() }

// Run drops the connections and series of instances that leave the pool,
// and samples the counters for the status page every 10 s, until ctx is
// done.
func (r *Router) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	if r.bal != nil {
		wg.Go(func() { _ = r.bal.Run(ctx) })
		wg.Go(func() { _ = r.scraper.Run(ctx) })
	}
	if r.prober != nil {
		wg.Go(func() { _ = r.prober.Run(ctx) })
	}
	wg.Go(func() { _ = r.gate.Run(ctx) })
	if r.accessOut != nil {
		wg.Go(func() { r.accessOut.run(ctx) })
	}
	if r.canary != nil {
		wg.Go(func() { _ = r.canary.Run(ctx) })
	}
	wg.Go(func() { tick.Every(ctx, r.sampleClock, func() time.Duration { return r.sampleEvery }, r.sampleStatus) })
	for {
		snap := r.pool.Snapshot()
		r.upstreams.prune(snap)
		r.meters.prune(snap)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-snap.Changed():
		}
	}
}

// MaxBodySize is the request body limit, for fasthttp.Server.MaxRequestBodySize.
func (r *Router) MaxBodySize() int { return r.cfg.Load().MaxBodySize }

// MaxHeaderSize is the request head limit, for fasthttp.Server.ReadBufferSize.
func (r *Router) MaxHeaderSize() int { return r.cfg.Load().MaxHeaderSize }

// Handler serves the API.
func (r *Router) Handler(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/v1/chat/completions":
		r.serveModel(ctx, "chat")
	case "/v1/completions":
		r.serveModel(ctx, "completions")
	case "/v1/embeddings":
		r.serveModel(ctx, "embeddings")
	case "/v1/responses":
		r.serveModel(ctx, "responses")
	case "/v1/models":
		r.serveModels(ctx)
	case "/healthz":
		ctx.SetBodyString("ok\n")
	case "/readyz":
		r.serveReady(ctx)
	default:
		if id, ok := strings.CutPrefix(string(ctx.Path()), "/v1/models/"); ok && id != "" {
			r.serveModelByID(ctx, id)
			return
		}
		if r.isPassthrough(ctx.Path()) {
			r.servePassthrough(ctx)
			return
		}
		x, _ := r.begin(ctx, "unknown")
		r.fail(ctx, x, errNoRoute)
	}
}

// WritePrometheus writes the router's metrics, and the gauges computed at
// scrape time: pool, breakers, active health, tiers, each family with # HELP and # TYPE.
func (r *Router) WritePrometheus(w io.Writer) {
	var buf bytes.Buffer
	r.writeMetrics(&buf)
	_ = writeAnnotated(w, buf.Bytes())
}

func (r *Router) writeMetrics(w io.Writer) {
	r.meters.set.WritePrometheus(w)
	if r.accessOut != nil {
		metrics.WriteCounterUint64(w, "modelgate_access_log_dropped_total", r.accessOut.dropped.Load())
	}
	writePool(w, r.pool.Snapshot())
	writeStale(w, r.pool.Stale())
	if r.bal != nil {
		writeBalancer(w, r.bal, r.routes.Load())
		r.scraper.WritePrometheus(w)
	}
	if r.prober != nil {
		probes, failures := r.prober.Counts()
		metrics.WriteCounterUint64(w, "modelgate_health_probes_total", probes)
		metrics.WriteCounterUint64(w, "modelgate_health_probe_failures_total", failures)
	}
	for _, rt := range r.routes.Load().routes {
		metrics.WriteGaugeUint64(w, `modelgate_degrade_tier{model="`+rt.Model+`"}`, uint64(r.Tier(rt.Model)))
	}
	if r.canary != nil {
		r.canary.WritePrometheus(w)
	}
}

// ErrorHandler answers the errors fasthttp.Server meets before Handler runs,
// such as a body over the limit; set it as fasthttp.Server.ErrorHandler.
// The reply never quotes the request: fasthttp's errors carry the raw head,
// Authorization header included.
func (r *Router) ErrorHandler(ctx *fasthttp.RequestCtx, err error) {
	ErrorHandler(ctx, err)
}

// ErrorHandler is Router.ErrorHandler for servers without a Router, such as
// the admin listener.
func ErrorHandler(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		errBodyTooLarge.write(ctx)
	case errors.As(err, &small):
		errHeaderTooLarge.write(ctx)
	case errors.As(err, &ne) && ne.Timeout():
		errReadTimeout.write(ctx)
	default:
		errBadHead.write(ctx)
	}
	ctx.SetConnectionClose()
}

func (r *Router) serveReady(ctx *fasthttp.RequestCtx) {
	select {
	case <-r.pool.Synced():
		ctx.SetBodyString("ready\n")
	default:
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBodyString("discovery has not synced yet\n")
	}
}

type modelList struct {
	Object string       `json:"object"`
	Data   []modelEntry `json:"data"`
}

type modelEntry struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// serveModels lists every route name, aliases included, whose service has a
// usable instance that serves the route (metadata.model). A pattern is not
// a model: a pattern route lists instead the names its usable instances
// declare in metadata.model that reach it (not claimed by a more specific
// route). With consumers configured it needs a key and lists only the
// names that key may use.
func (r *Router) serveModels(ctx *fasthttp.RequestCtx) {
	list, ok := r.visibleModels(ctx)
	if !ok {
		return
	}
	body, _ := json.Marshal(modelList{Object: "list", Data: list})
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// serveModelByID is GET /v1/models/{id}: the model object of /v1/models
// with that id — or of a name a pattern route would take to a usable
// instance — or 404 model_not_found (also for names the consumer may not
// use, so that a key cannot probe for routes).
func (r *Router) serveModelByID(ctx *fasthttp.RequestCtx, id string) {
	list, ok := r.visibleModels(ctx)
	if !ok {
		return
	}
	found := slices.ContainsFunc(list, func(m modelEntry) bool { return m.ID == id })
	if !found {
		consumer, _ := authenticate(ctx, r.cfg.Load().Consumers) // passed in visibleModels
		rt := r.routes.Load().lookup(id)
		found = rt != nil && rt.pattern && id != rt.Model && consumer.allows(rt, id) &&
			servesRouted(r.pool.Snapshot().Service(rt.serviceKey), rt, id)
	}
	if !found {
		errUnknownModel(id).write(ctx)
		return
	}
	body, _ := json.Marshal(modelEntry{ID: id, Object: "model", OwnedBy: "modelgate"})
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// visibleModels is what /v1/models lists for the request's consumer. It
// writes the error reply and returns false if the method or key is wrong.
func (r *Router) visibleModels(ctx *fasthttp.RequestCtx) ([]modelEntry, bool) {
	if !ctx.IsGet() {
		errMethod.write(ctx)
		return nil, false
	}
	consumer, aerr := authenticate(ctx, r.cfg.Load().Consumers)
	if aerr != nil {
		aerr.write(ctx)
		return nil, false
	}
	snap := r.pool.Snapshot()
	t := r.routes.Load()
	list := []modelEntry{}
	for _, rt := range t.routes {
		svc := snap.Service(rt.serviceKey)
		if !hasUsable(svc, rt.names()) {
			continue
		}
		names := rt.Aliases
		if !rt.pattern {
			names = append([]string{rt.Model}, rt.Aliases...)
		}
		for _, name := range names {
			if rt.pattern && consumer.allows(rt, name) || !rt.pattern && consumer.allowsName(name) {
				list = append(list, modelEntry{ID: name, Object: "model", OwnedBy: "modelgate"})
			}
		}
		if rt.pattern {
			for _, name := range declaredModels(svc, rt, t) {
				if consumer.allows(rt, name) {
					list = append(list, modelEntry{ID: name, Object: "model", OwnedBy: "modelgate"})
				}
			}
		}
	}
	return list, true
}

// declaredModels are the names that usable instances of svc list in
// metadata.model and that reach pattern route rt, sorted.
func declaredModels(svc *discovery.Service, rt *Route, t *table) []string {
	seen := map[string]bool{}
	for _, in := range svc.Instances {
		if !in.Usable() || !in.ModelListed {
			continue // a service name is no declared model
		}
		for _, m := range in.Models {
			if t.lookup(m) == rt && rt.UpstreamModel == "" && !slices.Contains(rt.Aliases, m) {
				seen[m] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// servesRouted reports whether a usable instance of svc serves name as
// pattern route rt would send it.
func servesRouted(svc *discovery.Service, rt *Route, name string) bool {
	if svc == nil {
		return false
	}
	for _, in := range svc.Instances {
		if in.Usable() && (!in.ModelListed || in.Serves(rt.sentModel(name))) {
			return true
		}
	}
	return false
}

func hasUsable(svc *discovery.Service, names []string) bool {
	if svc == nil {
		return false
	}
	for _, in := range svc.Instances {
		if in.Usable() && in.ServesAny(names) {
			return true
		}
	}
	return false
}
