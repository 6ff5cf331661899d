package router

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/degrade"
	"github.com/modelgate/modelgate/degrade/quota"
	"github.com/modelgate/modelgate/degrade/replycache"
	"github.com/modelgate/modelgate/internal/reqjson"
	"github.com/modelgate/modelgate/internal/sse"
)

// degradedHeader tells a client its reply was degraded: shed, queue or cache.
const degradedHeader = "X-Modelgate-Degraded"

// defaultRouteCap is a route's concurrency cap in tier 2 when neither the
// route nor its instances name one.
const defaultRouteCap = 64

// degrader holds the router's degradation state: the tier controller, each
// route's queue and signal window, the reply cache and consumer quotas.
type degrader struct {
	ctl    *degrade.Controller
	cache  replycache.Store // nil when the cache is off
	quotas *quota.Quotas

	mu       sync.Mutex
	limiters map[string]*degrade.Limiter // by service: routes of one service share its capacity
	windows  map[string]*degrade.Window  // by route
}

func errShed(model string) *apiError {
	return &apiError{status: 503, typ: typeUnavailable, code: "shed", retryAfter: 5,
		message: "the model `" + model + "` is shedding load right now; retry later"}
}

func errDegraded(model string) *apiError {
	return &apiError{status: 503, typ: typeUnavailable, code: "degraded", retryAfter: 5,
		message: "the model `" + model + "` is degraded and this request is not in the reply cache; retry later"}
}

func errQueue(model string, cause error) *apiError {
	return &apiError{status: 503, typ: typeUnavailable, code: "queue_timeout", retryAfter: 2,
		message: "the model `" + model + "` is at capacity: " + cause.Error()}
}

func errQuota(retry time.Duration) *apiError {
	return &apiError{status: 429, typ: typeRateLimit, code: "quota_exceeded",
		retryAfter: max(1, int(math.Ceil(retry.Seconds()))),
		message:    "this API key is over its requests or tokens per minute"}
}

// newDegrader builds the degradation state from cfg; the controller pulls
// its signals from r.
func (r *Router) newDegrader(cfg *Config) {
	d := &degrader{quotas: quota.New(nil, quota.WithLogger(r.log)),
		limiters: map[string]*degrade.Limiter{}, windows: map[string]*degrade.Window{}}
	th := degrade.DefaultThresholds()
	if cfg.Degrade.EnterAfter > 0 {
		th.EnterAfter = cfg.Degrade.EnterAfter
	}
	if cfg.Degrade.ExitAfter > 0 {
		th.ExitAfter = cfg.Degrade.ExitAfter
	}
	d.ctl = degrade.NewController(r.signals, degrade.WithThresholds(th), degrade.WithLogger(r.log),
		degrade.WithInterval(cfg.Degrade.Interval), degrade.OnChange(r.tierChanged))
	if c := cfg.Degrade.Cache; !c.Disabled {
		d.cache = replycache.NewLRU(replycache.LRUConfig{MaxBytes: c.MaxBytes, FreshTTL: c.FreshTTL, StaleTTL: c.StaleTTL})
	}
	r.deg = d
}

// bindRoutes gives each route its service's queue and its own window, kept
// across reloads.
func (r *Router) bindRoutes(cfg *Config, t *table) {
	d := r.deg
	d.mu.Lock()
	for _, rt := range t.routes {
		l, ok := d.limiters[rt.serviceKey]
		if !ok {
			l = degrade.NewLimiter(0, cfg.Degrade.QueueSize)
			d.limiters[rt.serviceKey] = l
		}
		l.SetMaxQueue(cfg.Degrade.QueueSize)
		w, ok := d.windows[rt.Model]
		if !ok {
			w = degrade.NewWindow(cfg.Degrade.Window)
			d.windows[rt.Model] = w
		}
		rt.limiter, rt.window = l, w
	}
	d.mu.Unlock()
}

// tierChanged caps a service's concurrency while any of its routes is at
// tier 2 or above, and lifts the cap when none is.
func (r *Router) tierChanged(name string, from, to degrade.Tier, pinned bool) {
	t := r.routes.Load()
	rt := t.byName[name]
	if rt == nil || rt.limiter == nil {
		return
	}
	capped := false
	for _, other := range t.routes {
		if other.serviceKey != rt.serviceKey {
			continue
		}
		tier := r.deg.ctl.Tier(other.Model)
		if other == rt {
			tier = to
		}
		capped = capped || tier >= degrade.TierCap
	}
	if capped {
		rt.limiter.SetCap(r.serviceCap(t, rt))
	} else {
		rt.limiter.SetCap(0)
	}
}

// serviceCap is the tier-2 concurrency cap of a route's service: the
// known capacity, else defaultRouteCap.
func (r *Router) serviceCap(t *table, rt *Route) int {
	if c := r.knownCap(t, rt); c > 0 {
		return c
	}
	return defaultRouteCap
}

// knownCap is the capacity of a route's service when it is configured: the
// smallest max_concurrency of its routes, else the sum of its instances'
// when every instance states one; 0 when unknown.
func (r *Router) knownCap(t *table, rt *Route) int {
	least := 0
	for _, other := range t.routes {
		if other.serviceKey == rt.serviceKey && other.MaxConcurrency > 0 && (least == 0 || other.MaxConcurrency < least) {
			least = other.MaxConcurrency
		}
	}
	if least > 0 {
		return least
	}
	sum := 0
	if svc := r.pool.Snapshot().Service(rt.serviceKey); svc != nil {
		for _, in := range svc.Instances {
			if in.MaxConcurrency == 0 {
				return 0
			}
			sum += in.MaxConcurrency
		}
	}
	return sum
}

// signals computes a route's degradation signals from its instances (via
// the balancer's live state when there is one) and its recent requests.
func (r *Router) signals(name string) degrade.Signals {
	rt := r.routes.Load().byName[name]
	if rt == nil {
		return degrade.Signals{Ready: 1}
	}
	var s degrade.Signals
	all, usable, open := 0, 0, 0
	if r.bal != nil {
		for _, st := range r.bal.Instances() {
			if st.Service != rt.serviceKey {
				continue
			}
			all++
			if st.Usable {
				usable++
			}
			if st.Breaker == "open" {
				open++
			}
			s.InFlight += int(st.InFlight)
		}
	} else if svc := r.pool.Snapshot().Service(rt.serviceKey); svc != nil {
		for _, in := range svc.Instances {
			all++
			if in.Usable() {
				usable++
			}
		}
	}
	if all > 0 {
		s.Ready, s.BreakerOpen = float64(usable)/float64(all), float64(open)/float64(all)
	}
	s.Capacity = r.knownCap(r.routes.Load(), rt) // 0: unknown, not a signal
	s.Requests, s.ErrorRatio, s.TTFTp95 = rt.window.Snapshot(r.now())
	s.TTFTSLO = rt.TTFTSLO
	return s
}

// observe records one upstream outcome of a route for its signals.
func (r *Router) observe(x *exchange, rt *Route, failed bool) {
	if rt.window != nil {
		rt.window.Record(r.now(), failed, x.ttft)
	}
}

// Tier returns a route's degradation tier (0 normal … 3 cache).
func (r *Router) Tier(route string) degrade.Tier {
	if r.cfg.Load().Degrade.Disabled {
		return degrade.TierNormal
	}
	return r.deg.ctl.Tier(route)
}

// Degrade returns the tier controller, to pin tiers or read their status.
func (r *Router) Degrade() *degrade.Controller { return r.deg.ctl }

// admit runs the degradation steps before a request goes upstream: quota,
// shedding, the reply cache and the queue. It reports whether it answered
// the request itself. body is the client's own body.
func (r *Router) admit(ctx *fasthttp.RequestCtx, x *exchange, rt *Route, cfg *Config, body []byte) bool {
	if c := x.consumer; c != nil && (c.RPM > 0 || c.TPM > 0) {
		est := estimateTokens(x.promptLen) + maxTokens(&x.req)
		res, retry, err := r.deg.quotas.Reserve(ctx, c.Name, quota.Limits{RPM: c.RPM, TPM: c.TPM}, est, x.start)
		switch {
		case errors.Is(err, quota.ErrExceeded):
			r.fail(ctx, x, errQuota(retry))
			return true
		case err != nil:
			r.log.Warn().Err(err).Msg("quota store failed; letting the request in")
		default:
			x.reservation, x.reserved = res, true
		}
	}
	tier := r.Tier(rt.Model)
	if tier >= degrade.TierShed && rt.Criticality == degrade.Sheddable {
		x.degraded = "shed"
		if len(rt.Fallback) == 0 {
			r.fail(ctx, x, errShed(x.model))
			return true
		}
		x.skipPrimary = true // straight to the fallback routes
	}
	if cache := r.deg.cache; cache != nil {
		if key, ok := replycache.Key(cacheScope(ctx, x, rt), x.api, body); ok {
			x.cacheKey, x.cacheable = key, true
			e, fresh, hit := cache.Get(ctx, key, x.start)
			rules := replycache.Rules{Always: cfg.Degrade.Cache.Always, Deterministic: cfg.Degrade.Cache.Deterministic}
			if hit && ((fresh && rules.Allows(x.api, x.req.TemperatureKind == reqjson.Number && x.req.Temperature == 0)) || tier == degrade.TierCache) {
				r.serveCached(ctx, x, e, fresh)
				return true
			}
			if hit {
				x.stale = &e
			}
		}
	}
	if rt.limiter != nil && !cfg.Degrade.Disabled {
		release, waited, err := rt.limiter.Acquire(ctx, rt.Criticality, x.start.Add(rt.QueueTimeout))
		if err != nil {
			x.degraded = "queue"
			if x.stale != nil {
				r.serveCached(ctx, x, *x.stale, false)
				return true
			}
			r.fail(ctx, x, errQueue(x.model, err))
			return true
		}
		x.release = release
		if waited > 0 {
			x.degraded = "queue"
			ctx.Response.Header.Set(degradedHeader, "queue")
			rt.meters.queueWait.Update(waited.Seconds())
		}
	}
	return false
}

// cacheScope is the tenant boundary of a request's cached replies: its
// consumer (unless the route shares its cache) and its tags header, which
// picks the instances that answer.
func cacheScope(ctx *fasthttp.RequestCtx, x *exchange, rt *Route) string {
	scope := ""
	if x.consumer != nil && !rt.Cache.Shared {
		scope = x.consumer.Name
	}
	if tags := ctx.Request.Header.Peek(tagsHeader); len(tags) > 0 {
		scope += "\x00" + string(tags)
	}
	return scope
}

// maxTokens is what a request may generate, for quota estimates.
func maxTokens(req *reqjson.Request) int {
	if req.MaxTokens > 0 {
		return int(min(req.MaxTokens, 1<<30))
	}
	return 256
}

// serveCached answers from the reply cache, replaying a stored stream as
// SSE (without the usage-only chunk when the client did not ask for usage).
func (r *Router) serveCached(ctx *fasthttp.RequestCtx, x *exchange, e replycache.Entry, fresh bool) {
	ctx.SetStatusCode(e.Status)
	ctx.SetContentType(e.ContentType)
	ctx.Response.Header.Set(degradedHeader, "cache")
	x.degraded, x.fromCache, x.status, x.stream = "cache", true, e.Status, e.Stream
	kind := 1
	if fresh {
		kind = 0
	}
	x.meters.cacheHits[kind].Inc()
	if !e.Stream {
		ctx.SetBody(e.Body)
		x.usage = usageFromJSON(e.Body)
		r.finish(x, r.now())
		return
	}
	wantUsage := x.req.IncludeUsage
	out := make([]byte, 0, len(e.Body))
	rd := sse.NewReader(bytes.NewReader(e.Body), 0)
	for {
		raw, data, err := rd.Next()
		if err != nil {
			break
		}
		c := inspectChunk(data)
		if c.usage.found {
			x.usage = c.usage
		}
		if c.usageOnly && !wantUsage {
			continue
		}
		out = append(out, raw...)
	}
	ctx.SetBody(out)
	r.finish(x, r.now())
}

// store keeps a complete 200 reply in the reply cache.
func (r *Router) store(x *exchange, body []byte, contentType string, stream bool) {
	if r.deg.cache == nil || !x.cacheable {
		return
	}
	r.deg.cache.Set(context.Background(), x.cacheKey, replycache.Entry{Status: 200, ContentType: contentType,
		Body: append([]byte(nil), body...), Stream: stream, Stored: r.now()})
}

// serveDegrade handles /admin/degrade: GET lists every route's tier and
// signals; POST ?route=R&tier=N&ttl=60s pins a tier, tier=auto unpins.
func (r *Router) serveDegrade(ctx *fasthttp.RequestCtx) {
	if ctx.IsGet() {
		writeJSON(ctx, r.deg.ctl.Statuses())
		return
	}
	if !ctx.IsPost() {
		ctx.Error("GET or POST", fasthttp.StatusMethodNotAllowed)
		return
	}
	args := ctx.QueryArgs()
	route := string(args.Peek("route"))
	if r.routes.Load().byName[route] == nil {
		ctx.Error("unknown route "+strconv.Quote(route), fasthttp.StatusBadRequest)
		return
	}
	tierArg := string(args.Peek("tier"))
	if tierArg == "auto" {
		r.deg.ctl.Unpin(route)
		writeJSON(ctx, map[string]string{"route": route, "tier": "auto"})
		return
	}
	tier, err := degrade.ParseTier(tierArg)
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusBadRequest)
		return
	}
	ttl := time.Duration(0)
	if v := args.Peek("ttl"); len(v) > 0 {
		if ttl, err = time.ParseDuration(string(v)); err != nil {
			ctx.Error("ttl: "+err.Error(), fasthttp.StatusBadRequest)
			return
		}
	}
	if err := r.deg.ctl.Pin(route, tier, ttl); err != nil {
		ctx.Error(err.Error(), fasthttp.StatusBadRequest)
		return
	}
	st, _ := r.deg.ctl.Status(route)
	writeJSON(ctx, st)
}
