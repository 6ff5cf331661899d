package router

import (
	"cmp"
	_ "embed"
	"html/template"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/degrade"
)

//go:embed status.html
var statusHTML string

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"ms":     func(f float64) string { return formatFloat(f, 1) },
	"pct":    func(f float64) string { return formatFloat(100*f, 1) + " %" },
	"rate":   func(f float64) string { return formatFloat(f, 1) },
	"shares": joinShares,
}).Parse(statusHTML))

// Levels of the status page, as CSS classes: what needs the operator first.
const (
	levelOK   = "ok"
	levelWarn = "warn"
	levelBad  = "bad"
)

func levelRank(l string) int {
	switch l {
	case levelBad:
		return 2
	case levelWarn:
		return 1
	}
	return 0
}

// summarySpan is the span of the route figures on the status page.
const summarySpan = time.Minute

// statusPage is what the status page shows.
type statusPage struct {
	Now      string
	Version  uint64
	Synced   bool
	Stale    bool
	Problems []problem // worst first
	Routes   []routeStatus
	Services []serviceStatus
	Canaries []canary.Status
}

// problem is one line of the page's "needs attention" list.
type problem struct {
	Level string
	Text  string
}

type routeStatus struct {
	RouteView
	Level string

	Tier, TierLevel string
	Pinned          bool
	PinnedUntil     string // RFC 3339, or "unpinned"
	PinnedFor       string // time left, "9m58s"
	Reason          string
	Since           string // how long at Tier, "2m30s"

	Instances   int // in the route's service
	Available   int // usable, breaker not open, not failing health checks
	BreakerOpen int
	Down        int // failing health checks
	InstLevel   string

	HasFigures   bool // a minute of history, or part of one
	ReqPerSec    float64
	ErrorRatio   float64 // -1: no requests
	ErrLevel     string
	TTFT         string // p95 over the degrade window, "–" when none
	TTFTLevel    string
	TokensPerSec float64

	Configured []share // nil: one version, no canary
	Actual     []share
	Plot       template.HTML
}

// share is a version's part of a route's traffic.
type share struct {
	Version string
	Percent float64
}

type serviceStatus struct {
	Service   string
	Instances []instanceStatus // worst first
}

type instanceStatus struct {
	InstanceView
	State, Level string
	// Latency is from successful replies only, in ms ("–" when there
	// is none or the latest attempts all failed).
	Latency string
}

// serveStatus renders the status page: server-side HTML with inline SVG,
// refreshed by the browser every 5 seconds. Everything on it is read from
// state the router keeps anyway and from the history sampled every 10 s.
func (r *Router) serveStatus(ctx *fasthttp.RequestCtx) {
	page := r.statusPage()
	ctx.SetContentType("text/html; charset=utf-8")
	if err := statusTmpl.Execute(ctx, page); err != nil {
		ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
	}
}

func (r *Router) statusPage() statusPage {
	now := r.now()
	pv := r.poolView()
	page := statusPage{Now: now.UTC().Format(time.RFC3339), Version: pv.Version, Synced: pv.Synced, Stale: pv.Stale}
	if !pv.Synced {
		page.Problems = append(page.Problems, problem{levelBad, "discovery has not synced: the pool may be incomplete"})
	}
	if pv.Stale {
		page.Problems = append(page.Problems, problem{levelWarn, "the pool is a snapshot from disk that discovery has not confirmed"})
	}
	finished := map[string]uint64{}
	if r.bal != nil {
		for _, st := range r.bal.Instances() {
			finished[st.ID] = st.Picks - uint64(max(st.InFlight, 0))
		}
	}
	bySvc := map[string][]InstanceView{}
	var instProblems []problem // listed after the routes' own
	for _, sv := range pv.Services {
		bySvc[sv.Service] = sv.Instances
		ss := serviceStatus{Service: sv.Service}
		for _, iv := range sv.Instances {
			is := r.instanceStatus(iv, finished[iv.ID])
			ss.Instances = append(ss.Instances, is)
			if is.Level != levelOK {
				instProblems = append(instProblems, problem{is.Level, "instance " + iv.Addr + " of " + sv.Service + ": " + is.State})
			}
		}
		slices.SortStableFunc(ss.Instances, func(a, b instanceStatus) int { return levelRank(b.Level) - levelRank(a.Level) })
		page.Services = append(page.Services, ss)
	}
	t := r.routes.Load()
	for _, rv := range r.routesView() {
		rt := t.byName[rv.Model]
		if rt == nil {
			continue
		}
		rs := r.routeStatus(rt, rv, bySvc[rv.Service], now)
		page.Problems = append(page.Problems, routeProblems(&rs)...)
		page.Routes = append(page.Routes, rs)
	}
	page.Problems = append(page.Problems, instProblems...)
	slices.SortStableFunc(page.Routes, func(a, b routeStatus) int { return levelRank(b.Level) - levelRank(a.Level) })
	slices.SortStableFunc(page.Services, func(a, b serviceStatus) int { return levelRank(worst(b)) - levelRank(worst(a)) })
	slices.SortStableFunc(page.Problems, func(a, b problem) int { return levelRank(b.Level) - levelRank(a.Level) })
	if r.canary != nil {
		page.Canaries = r.canary.Status()
	}
	return page
}

func worst(s serviceStatus) string {
	if len(s.Instances) == 0 {
		return levelOK
	}
	return s.Instances[0].Level
}

// instanceState folds what the registry, the breaker and the health checks
// say of an instance into one state: it is ok only if all three agree.
func instanceState(iv InstanceView) (state, level string) {
	switch {
	case !iv.Enabled:
		return "disabled", levelBad
	case !iv.Healthy:
		return "unhealthy in the registry", levelBad
	case iv.Breaker == string(balancer.BreakerOpen):
		return "breaker open", levelBad
	case iv.Health == "down":
		return "failing health checks", levelBad
	case iv.Drain:
		return "draining", levelWarn
	case iv.Weight <= 0:
		return "weight 0", levelWarn
	case iv.Breaker == string(balancer.BreakerHalfOpen):
		return "breaker half-open: probing", levelWarn
	}
	return "ok", levelOK
}

// available reports whether the balancer would pick the instance now.
func available(iv InstanceView) bool {
	return iv.Usable && iv.Breaker != string(balancer.BreakerOpen) && iv.Health != "down"
}

// instanceStatus is an instance's row; finished is the number of attempts
// it has reported done since it joined. Its latency is the one from
// successful replies the history kept, shown unless its latest attempts
// all failed; before the first sample, the balancer's average if it has
// never failed.
func (r *Router) instanceStatus(iv InstanceView, finished uint64) instanceStatus {
	is := instanceStatus{InstanceView: iv, Latency: "–"}
	is.State, is.Level = instanceState(iv)
	tr := r.history.track(iv.ID)
	var lat time.Duration
	switch {
	case iv.Breaker == string(balancer.BreakerOpen), tr.lastFailure.After(tr.lastSuccess):
	case tr.latency > 0:
		lat = tr.latency
	case tr.lastSuccess.IsZero() && tr.lastFailure.IsZero() && iv.Failures == 0 && finished > 0:
		lat = time.Duration(iv.EWMAms * float64(time.Millisecond))
	}
	if lat > 0 {
		is.Latency = formatFloat(float64(lat)/float64(time.Millisecond), 1)
	}
	return is
}

func (r *Router) routeStatus(rt *Route, rv RouteView, instances []InstanceView, now time.Time) routeStatus {
	rs := routeStatus{RouteView: rv, ErrorRatio: -1, TTFT: "–", InstLevel: levelOK, ErrLevel: levelOK, TTFTLevel: levelOK}
	st, _ := r.gate.Status(rt.Model)
	rs.Tier, rs.Pinned, rs.Reason = st.Tier.String(), st.Pinned, st.Reason
	rs.TierLevel = tierLevel(st.Tier)
	if st.Pinned {
		rs.PinnedUntil = "unpinned"
		if !st.PinnedUntil.IsZero() {
			rs.PinnedUntil = st.PinnedUntil.UTC().Format(time.RFC3339)
			rs.PinnedFor = humanDuration(st.PinnedUntil.Sub(now), time.Second)
		}
	}
	if !st.Since.IsZero() {
		rs.Since = humanDuration(now.Sub(st.Since), time.Second)
	}
	for _, iv := range instances {
		rs.Instances++
		if available(iv) {
			rs.Available++
		}
		if iv.Breaker == string(balancer.BreakerOpen) {
			rs.BreakerOpen++
		}
		if iv.Health == "down" {
			rs.Down++
		}
	}
	switch {
	case rs.Available == 0:
		rs.InstLevel = levelBad
	case rs.Available < rs.Usable || rs.BreakerOpen > 0:
		rs.InstLevel = levelWarn
	}

	pts := r.history.points(rt.Model)
	sum := summarize(pts, summarySpan)
	if sum.secs > 0 {
		rs.HasFigures = true
		rs.ReqPerSec, rs.ErrorRatio, rs.TokensPerSec = sum.ReqPerSec, sum.ErrorRatio, sum.TokensPerSec
	}
	switch {
	case rs.ErrorRatio >= 0.05:
		rs.ErrLevel = levelBad
	case rs.ErrorRatio > 0:
		rs.ErrLevel = levelWarn
	}
	ttft := sum.TTFTP95
	if len(pts) == 0 {
		ttft = r.gate.Signals(rt.Model).TTFTp95
	}
	if ttft > 0 {
		rs.TTFT = humanDuration(ttft, time.Millisecond)
		if rt.TTFTSLO > 0 && ttft > rt.TTFTSLO {
			rs.TTFTLevel = levelWarn
		}
	}

	var c balancer.Canary
	hasCanary := false
	if r.bal != nil {
		c, hasCanary = r.bal.CanaryOf(rt.Model)
	}
	rs.Configured = configuredSplit(rt.Split, instances, c, hasCanary)
	if rs.Configured != nil || len(sum.Split) > 1 {
		rs.Actual = sortedShares(sum.Split)
	}
	rs.Plot = plotSVG(pts, now, historySpan, historyEvery)

	rs.Level = worstLevel(rs.TierLevel, rs.InstLevel, rs.ErrLevel, rs.TTFTLevel)
	if rs.Pinned && rs.Level == levelOK && st.Tier != degrade.TierNormal {
		rs.Level = levelWarn
	}
	return rs
}

func worstLevel(levels ...string) string {
	out := levelOK
	for _, l := range levels {
		if levelRank(l) > levelRank(out) {
			out = l
		}
	}
	return out
}

func tierLevel(t degrade.Tier) string {
	switch {
	case t >= degrade.TierCap:
		return levelBad
	case t > degrade.TierNormal:
		return levelWarn
	}
	return levelOK
}

// routeProblems lists what is wrong with a route, for the top of the page.
func routeProblems(rs *routeStatus) []problem {
	var out []problem
	name := "route " + rs.Model + ": "
	if rs.Available == 0 {
		text := "no available instance"
		if rs.BreakerOpen > 0 {
			text += " (" + strconv.Itoa(rs.BreakerOpen) + " with breaker open)"
		}
		out = append(out, problem{levelBad, name + text})
	}
	if rs.TierLevel != levelOK {
		text := "tier " + rs.Tier
		if rs.Pinned {
			text += ", pinned until " + rs.PinnedUntil
			if rs.PinnedFor != "" {
				text += " (" + rs.PinnedFor + " left)"
			}
		}
		if rs.Reason != "" {
			text += " — " + rs.Reason
		}
		out = append(out, problem{rs.TierLevel, name + text})
	}
	if rs.ErrLevel != levelOK {
		out = append(out, problem{rs.ErrLevel, name + "error rate " + formatFloat(100*rs.ErrorRatio, 1) + " % in the last minute"})
	}
	if rs.TTFTLevel != levelOK {
		out = append(out, problem{rs.TTFTLevel, name + "TTFT p95 " + rs.TTFT + " above its SLO"})
	}
	return out
}

// configuredSplit is the share of each version a route's configuration
// asks for: its split, else the Nacos weights of its service's usable
// instances, with the canary overlay on top. It is nil when there is one
// version and no canary.
func configuredSplit(split map[string]int, instances []InstanceView, c balancer.Canary, hasCanary bool) []share {
	base := map[string]float64{}
	if len(split) > 0 {
		for v, w := range split {
			base[v] = float64(w)
		}
	} else {
		for _, iv := range instances {
			if iv.Usable {
				base[iv.Version] += iv.Weight
			}
		}
	}
	if !hasCanary {
		if len(base) < 2 {
			return nil
		}
		return sortedShares(normalize(base, 100))
	}
	cs := 100 * float64(c.Share) / balancer.CanaryScale
	delete(base, c.Version)
	out := normalize(base, 100-cs)
	out[c.Version] = cs
	return sortedShares(out)
}

// normalize scales the weights to sum to total.
func normalize(w map[string]float64, total float64) map[string]float64 {
	var sum float64
	for _, v := range w {
		sum += v
	}
	out := make(map[string]float64, len(w)+1)
	for k, v := range w {
		if sum > 0 {
			out[k] = total * v / sum
		}
	}
	return out
}

func sortedShares(m map[string]float64) []share {
	if len(m) == 0 {
		return nil
	}
	out := make([]share, 0, len(m))
	for _, v := range slices.Sorted(maps.Keys(m)) {
		out = append(out, share{Version: cmp.Or(v, "(none)"), Percent: m[v]})
	}
	return out
}

// sampleStatus adds a reading of the counters to the history.
func (r *Router) sampleStatus() { r.history.add(r.read(r.now())) }

// read reads the counters and figures of the status page's history. It
// runs every 10 s, not per request, and only reads what the request path
// keeps anyway.
func (r *Router) read(now time.Time) reading {
	t := r.routes.Load()
	rd := reading{at: now, routes: make(map[string]routeReading, len(t.routes)), instances: map[string]instanceReading{}}
	for _, rt := range t.routes {
		mm := rt.meters
		rr := routeReading{service: rt.serviceKey, requests: mm.total.Load(), ttftP95: r.gate.Signals(rt.Model).TTFTp95}
		mm.requests.Range(func(k, v any) bool {
			if k.(requestKey).code >= 500 {
				rr.errors += v.(*metrics.Counter).Get()
			}
			return true
		})
		for i := range mm.tokens {
			for j := range mm.tokens[i] {
				rr.tokens += mm.tokens[i][j].Get()
			}
		}
		if r.bal != nil {
			if c, ok := r.bal.CanaryOf(rt.Model); ok {
				rr.canary, rr.canaryShare = c.Version, 100*float64(c.Share)/balancer.CanaryScale
			}
		}
		rd.routes[rt.Model] = rr
	}
	if r.bal != nil {
		for _, st := range r.bal.Instances() {
			rd.instances[st.ID] = instanceReading{service: st.Service, version: st.Version,
				finished: st.Picks - uint64(max(st.InFlight, 0)), failures: st.Failures, ewma: st.EWMA}
		}
	}
	return rd
}

// humanDuration prints d rounded to unit, such as "2m30s" or "230ms".
func humanDuration(d, unit time.Duration) string {
	if d < 0 {
		d = 0
	}
	return d.Round(unit).String()
}

func formatFloat(f float64, prec int) string { return strconv.FormatFloat(f, 'f', prec, 64) }

// joinShares prints shares as "v1 90 % · v2 10 %".
func joinShares(s []share) string {
	parts := make([]string, len(s))
	for i, sh := range s {
		parts[i] = sh.Version + " " + formatFloat(sh.Percent, 0) + " %"
	}
	return strings.Join(parts, " · ")
}
