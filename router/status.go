package router

import (
	_ "embed"
	"html/template"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/canary"
)

//go:embed status.html
var statusHTML string

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"ms":   func(f float64) string { return formatFloat(f, 1) },
	"pct":  func(f float64) string { return formatFloat(100*f, 1) + " %" },
	"rate": func(f float64) string { return formatFloat(f, 1) },
}).Parse(statusHTML))

// statusPage is what the status page shows.
type statusPage struct {
	Now      string
	Version  uint64
	Synced   bool
	Routes   []routeStatus
	Services []ServiceView
	Canaries []canary.Status
}

type routeStatus struct {
	RouteView
	Tier         string
	TokensPerSec float64
	Requests     float64
}

// serveStatus renders the status page: server-side HTML, refreshed by the
// browser every 5 seconds.
func (r *Router) serveStatus(ctx *fasthttp.RequestCtx) {
	pv := r.poolView()
	page := statusPage{Now: r.now().UTC().Format(time.RFC3339), Version: pv.Version, Synced: pv.Synced, Services: pv.Services}
	for _, rv := range r.routesView() {
		rs := routeStatus{RouteView: rv, Tier: "normal"}
		rs.Tier = r.Tier(rv.Model).String()
		rs.TokensPerSec = r.rates.perSecond(rv.Model)
		rs.Requests = r.rates.requests(rv.Model)
		page.Routes = append(page.Routes, rs)
	}
	if r.canary != nil {
		page.Canaries = r.canary.Status()
	}
	ctx.SetContentType("text/html; charset=utf-8")
	if err := statusTmpl.Execute(ctx, page); err != nil {
		ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
	}
}

// rates samples each model's token counters to show a recent rate.
type rates struct {
	mu      sync.Mutex
	samples map[string][]rateSample // by model, oldest first, at most a minute
}

type rateSample struct {
	at       time.Time
	tokens   uint64
	requests uint64
}

// sample records the counters of every model at now.
func (rs *rates) sample(m *meters, now time.Time) {
	m.mu.Lock()
	cur := make(map[string]rateSample, len(m.models))
	for name, mm := range m.models {
		var tok uint64
		for t := range mm.tokens {
			for s := range mm.tokens[t] {
				tok += mm.tokens[t][s].Get()
			}
		}
		cur[name] = rateSample{at: now, tokens: tok, requests: mm.total.Load()}
	}
	m.mu.Unlock()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.samples == nil {
		rs.samples = map[string][]rateSample{}
	}
	for name, s := range cur {
		list := append(rs.samples[name], s)
		for len(list) > 1 && now.Sub(list[0].at) > time.Minute {
			list = list[1:]
		}
		rs.samples[name] = list
	}
}

func (rs *rates) perSecond(model string) float64 {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	list := rs.samples[model]
	if len(list) < 2 {
		return 0
	}
	first, last := list[0], list[len(list)-1]
	return float64(last.tokens-first.tokens) / last.at.Sub(first.at).Seconds()
}

func (rs *rates) requests(model string) float64 {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	list := rs.samples[model]
	if len(list) == 0 {
		return 0
	}
	return float64(list[len(list)-1].requests)
}

func formatFloat(f float64, prec int) string { return strconv.FormatFloat(f, 'f', prec, 64) }
