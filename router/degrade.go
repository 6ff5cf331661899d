package router

import (
	"bytes"
	"math"
	"strconv"
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

func errShed(model string) *apiError {
	return &apiError{status: 503, typ: typeUnavailable, code: "shed", retryAfter: 5,
		message: "the model `" + model + "` is shedding load right now; retry later"}
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

// gateConfig is the degrade.Gate's view of cfg: its degrade section and
// the routes.
func gateConfig(cfg *Config) degrade.Config {
	gc := cfg.Degrade
	gc.Routes = make([]degrade.Route, 0, len(cfg.Routes))
	for i := range cfg.Routes {
		rt := &cfg.Routes[i]
		gc.Routes = append(gc.Routes, degrade.Route{Name: rt.Model, Service: rt.serviceKey, Class: rt.Criticality,
			MaxConcurrency: rt.MaxConcurrency, QueueTimeout: rt.QueueTimeout, TTFTSLO: rt.TTFTSLO,
			DefaultMaxTokens: rt.DefaultMaxTokens})
	}
	return gc
}

// Tier returns a route's degradation tier (0 normal … 3 cache).
func (r *Router) Tier(route string) degrade.Tier { return r.gate.Tier(route) }

// Degrade returns the degradation gate, to pin tiers or read their status.
func (r *Router) Degrade() *degrade.Gate { return r.gate }

// admit asks the gate whether and how the request goes on: quota,
// shedding, the reply cache and the queue. It reports whether the request
// has been answered; if not, x holds the gate's ticket, settled in finish.
// body is the client's own body.
func (r *Router) admit(ctx *fasthttp.RequestCtx, x *exchange, rt *Route, body []byte) bool {
	req := degrade.Request{Route: rt.Model, API: x.api, PromptTokens: estimateTokens(x.promptLen),
		MaxTokens: maxTokens(&x.req), Deterministic: x.req.TemperatureKind == reqjson.Number && x.req.Temperature == 0,
		Body: body, HasFallback: len(rt.Fallback) > 0, Start: x.start}
	if c := x.consumer; c != nil {
		req.Consumer, req.Limits = c.Name, quota.Limits{RPM: c.RPM, TPM: c.TPM}
	}
	if r.gate.CacheKeys(req.API, req.Deterministic) {
		req.Scope = cacheScope(ctx, x, rt)
	}
	d, ticket := r.gate.Admit(ctx, &req)
	x.ticket = ticket
	x.degraded = d.Degraded
	switch d.Verdict {
	case degrade.OverQuota:
		r.fail(ctx, x, errQuota(d.RetryAfter))
	case degrade.Shed:
		r.fail(ctx, x, errShed(x.model))
	case degrade.Queued:
		r.fail(ctx, x, errQueue(x.model, d.Err))
	case degrade.Cached:
		r.serveCached(ctx, x, d.Entry, d.Fresh)
	case degrade.ToFallback:
		x.skipPrimary = true
		return false
	default:
		if d.Waited > 0 {
			ctx.Response.Header.Set(degradedHeader, "queue")
			rt.meters.queueWait.Update(d.Waited.Seconds())
		}
		return false
	}
	return true
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
	return 0 // the route's default_max_tokens
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
		x.bytesOut = len(e.Body)
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
	x.bytesOut = len(out)
	r.finish(x, r.now())
}

// serveDegrade handles /admin/degrade: GET lists every route's tier and
// signals (JSON; ?format=text for an aligned table); POST
// ?route=R&tier=N&ttl=60s[&reason=…] pins a tier for ttl (required, at
// most 24h), tier=auto unpins.
func (r *Router) serveDegrade(ctx *fasthttp.RequestCtx) {
	if ctx.IsGet() {
		switch format := string(ctx.QueryArgs().Peek("format")); format {
		case "", "json":
			writeJSON(ctx, r.degradeViews())
		case "text":
			writeDegradeText(ctx, r.degradeViews())
		default:
			ctx.Error("format: want json or text", fasthttp.StatusBadRequest)
		}
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
		r.gate.Unpin(route)
		writeJSON(ctx, map[string]string{"route": route, "tier": "auto"})
		return
	}
	tier, err := degrade.ParseTier(tierArg)
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusBadRequest)
		return
	}
	ttl, err := time.ParseDuration(string(args.Peek("ttl")))
	if err != nil || ttl <= 0 || ttl > maxPinTTL {
		ctx.Error("ttl: want a duration above 0 and at most 24h, such as 60s", fasthttp.StatusBadRequest)
		return
	}
	reason, err := pinReason(args)
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusBadRequest)
		return
	}
	if err := r.gate.PinWithReason(route, tier, ttl, reason); err != nil {
		ctx.Error(err.Error(), fasthttp.StatusBadRequest)
		return
	}
	st, _ := r.gate.Status(route)
	writeJSON(ctx, newDegradeView(st, r.now()))
}
