package router

import (
	"bytes"
	"encoding/json"
	"io"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/balancer"
)

// AdminHandler serves the admin listener: /metrics, /healthz, /readyz and
// the JSON views under /admin/. Handlers in extra serve further paths (they
// win over the built-in ones); extraMetrics, if not nil, appends to
// /metrics (# HELP and # TYPE are added to the whole text). Keep the admin listener on loopback or behind auth.
func (r *Router) AdminHandler(extra map[string]fasthttp.RequestHandler, extraMetrics func(io.Writer)) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if h, ok := extra[string(ctx.Path())]; ok {
			h(ctx)
			return
		}
		switch string(ctx.Path()) {
		case "/":
			r.serveStatus(ctx)
		case "/metrics":
			ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
			var buf bytes.Buffer
			r.writeMetrics(&buf)
			if extraMetrics != nil {
				extraMetrics(&buf)
			}
			_ = writeAnnotated(ctx, buf.Bytes())
		case "/healthz":
			ctx.SetBodyString("ok\n")
		case "/readyz":
			r.serveReady(ctx)
		case "/admin/pool":
			writeJSON(ctx, r.poolView())
		case "/admin/routes":
			writeJSON(ctx, r.routesView())
		case "/admin/degrade":
			r.serveDegrade(ctx)
		case "/admin/canary":
			r.serveCanary(ctx)
		default:
			ctx.Error("not found", fasthttp.StatusNotFound)
		}
	}
}

func writeJSON(ctx *fasthttp.RequestCtx, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

// InstanceView is one instance in GET /admin/pool.
type InstanceView struct {
	ID       string            `json:"id"`
	Addr     string            `json:"addr"`
	Weight   float64           `json:"weight"`
	Healthy  bool              `json:"healthy"`
	Enabled  bool              `json:"enabled"`
	Usable   bool              `json:"usable"`
	Version  string            `json:"version,omitempty"`
	Models   []string          `json:"models"`
	Tags     map[string]string `json:"tags,omitempty"`
	Drain    bool              `json:"drain,omitempty"`
	MaxConc  int               `json:"max_concurrency,omitempty"`
	Breaker  string            `json:"breaker,omitempty"`
	Health   string            `json:"health,omitempty"` // active health: up, down (not picked), or not probed
	InFlight int64             `json:"in_flight"`
	EWMAms   float64           `json:"latency_ewma_ms"`
	Failures uint64            `json:"failures"` // attempts counted against its breaker since it joined
	// Engine is what the instance's own metrics endpoint last said, for
	// instances with metadata engine=…; nil for the others.
	Engine *EngineView `json:"engine,omitempty"`
}

// EngineView is an instance's engine state in GET /admin/pool.
type EngineView struct {
	Engine string `json:"engine"` // vllm, sglang, llamacpp
	// Fresh is true while the last scrape succeeded: the balancer then
	// counts the engine's queue; otherwise its in-flight count.
	Fresh   bool    `json:"fresh"`
	Waiting float64 `json:"waiting"` // queued in the engine (last good scrape)
	Running float64 `json:"running"`
	// KVUsage and CacheHitRatio are -1 when the engine does not export
	// them; the ratio is the engine's own, since it started.
	KVUsage       float64           `json:"kv_cache_usage"`
	CacheHitRatio float64           `json:"cache_hit_ratio"`
	LastError     string            `json:"last_error,omitempty"`
	Scrapes       map[string]uint64 `json:"scrapes"` // by result: ok, down, timeout, status, garbage
}

// ServiceView is one service in GET /admin/pool.
type ServiceView struct {
	Service   string         `json:"service"`
	Updated   time.Time      `json:"updated"`
	Instances []InstanceView `json:"instances"`
}

// PoolView is GET /admin/pool.
type PoolView struct {
	Version uint64 `json:"version"`
	Synced  bool   `json:"synced"`
	// Stale is true while the pool is a snapshot from disk that the source
	// has not confirmed yet (Nacos unreachable since start).
	Stale    bool          `json:"stale"`
	Services []ServiceView `json:"services"`
}

// InstanceStats is the balancer's live state of an instance.
type InstanceStats struct {
	Breaker  balancer.BreakerState
	Health   string
	InFlight int64
	EWMA     time.Duration
	Failures uint64
}

func (r *Router) poolView() PoolView {
	snap := r.pool.Snapshot()
	v := PoolView{Version: snap.Version, Stale: r.pool.Stale(), Services: []ServiceView{}}
	select {
	case <-r.pool.Synced():
		v.Synced = true
	default:
	}
	stats := map[string]InstanceStats{}
	if r.bal != nil {
		for _, st := range r.bal.Instances() {
			stats[st.ID] = InstanceStats{Breaker: st.Breaker, Health: st.Health, InFlight: st.InFlight, EWMA: st.EWMA, Failures: st.Failures}
		}
	}
	engines := map[string]*EngineView{}
	if r.scraper != nil {
		for _, st := range r.scraper.Stats() {
			engines[st.ID] = &EngineView{Engine: st.Engine, Fresh: st.Fresh, Waiting: st.Waiting, Running: st.Running,
				KVUsage: st.KVUsage, CacheHitRatio: st.CacheHitRatio, LastError: st.LastError, Scrapes: st.Scrapes}
		}
	}
	for _, svc := range snap.Services() {
		sv := ServiceView{Service: svc.Key, Updated: svc.Updated, Instances: []InstanceView{}}
		for _, in := range svc.Instances {
			st := stats[in.ID()]
			sv.Instances = append(sv.Instances, InstanceView{
				ID: in.ID(), Addr: in.Addr(), Weight: in.Weight, Healthy: in.Healthy, Enabled: in.Enabled,
				Usable: in.Usable(), Version: in.Version, Models: in.Models, Tags: in.Tags, Drain: in.Drain,
				MaxConc: in.MaxConcurrency, Breaker: string(st.Breaker), Health: st.Health, InFlight: st.InFlight,
				EWMAms: float64(st.EWMA.Microseconds()) / 1000, Failures: st.Failures, Engine: engines[in.ID()],
			})
		}
		v.Services = append(v.Services, sv)
	}
	return v
}

// RouteView is one route in GET /admin/routes.
type RouteView struct {
	Model         string            `json:"model"`
	Aliases       []string          `json:"aliases,omitempty"`
	Service       string            `json:"service"`
	UpstreamModel string            `json:"upstream_model,omitempty"`
	Tags          map[string]string `json:"tags,omitempty"`
	Fallback      []string          `json:"fallback,omitempty"`
	Retries       int               `json:"retries"`
	Timeout       string            `json:"timeout"`
	Usable        int               `json:"usable_instances"`
}

func (r *Router) routesView() []RouteView {
	snap := r.pool.Snapshot()
	out := []RouteView{}
	for _, rt := range r.routes.Load().routes {
		n := 0
		if svc := snap.Service(rt.serviceKey); svc != nil {
			for _, in := range svc.Instances {
				if in.Usable() {
					n++
				}
			}
		}
		out = append(out, RouteView{Model: rt.Model, Aliases: rt.Aliases, Service: rt.serviceKey,
			UpstreamModel: rt.UpstreamModel, Tags: rt.Tags, Fallback: rt.Fallback, Retries: rt.Retries,
			Timeout: rt.Timeout.String(), Usable: n})
	}
	return out
}
