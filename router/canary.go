package router

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/discovery"
)

// WithCanaryOptions configures the canary controller of the default
// balancer: its clock, logger, shared document.
func WithCanaryOptions(opts ...canary.Option) Option {
	return func(r *Router) { r.canOpts = append(r.canOpts, opts...) }
}

// Canary returns the canary controller, or nil with WithPicker.
func (r *Router) Canary() *canary.Controller { return r.canary }

// setCanaries hands the routes' configured rollouts to the controller.
func (r *Router) setCanaries(t *table) {
	if r.canary == nil {
		return
	}
	specs := map[string]canary.Spec{}
	for _, rt := range t.routes {
		if rt.Canary != nil {
			specs[rt.Model] = *rt.Canary
		}
	}
	if err := r.canary.SetConfigured(specs); err != nil { // validated with the config: not expected
		r.log.Error().Err(err).Msg("canary rollout not started")
	}
}

// canaryPicked notes the version of the instance an attempt went to.
func (r *Router) canaryPicked(x *exchange, rt *Route, in *discovery.Instance) {
	if r.canary == nil || !r.canary.Watching(rt.Model) {
		x.canaryRoute, x.watched = "", false
		return
	}
	x.canaryRoute, x.version, x.watched = rt.Model, in.Version, true
}

// canaryFailed reports an attempt that failed before its reply was
// relayed: a transport error or a broken reply (err), or a 5xx or 429
// that is retried (err is errStatus).
func (r *Router) canaryFailed(x *exchange, err error, status int, start time.Time) {
	if x.canaryRoute == "" {
		return
	}
	r.canary.Observe(x.canaryRoute, x.version, canary.Outcome{Status: status, Err: !errors.Is(err, errStatus),
		Duration: r.now().Sub(start)})
	x.canaryRoute = ""
}

// canaryFinishReason reads the finish_reason of a reply or stream chunk,
// only while the route is watched.
func (r *Router) canaryFinishReason(x *exchange, body []byte) string {
	if !x.watched {
		return ""
	}
	return gjson.GetBytes(body, "choices.0.finish_reason").Str
}

// canaryFinished reports the exchange's relayed attempt.
func (r *Router) canaryFinished(x *exchange, end time.Time) {
	if x.canaryRoute == "" || x.fromCache {
		return
	}
	o := canary.Outcome{Status: x.status, Duration: end.Sub(x.start), TTFT: x.ttft, Stream: x.stream,
		OutputTokens: x.usage.output, FinishReason: x.finishReason, NoGeneration: x.api == "embeddings"}
	if x.streamErr != nil {
		o.Canceled = errors.Is(x.streamErr, context.Canceled)
		o.Err = !o.Canceled
	}
	if o.TTFT == 0 || !x.stream {
		o.TTFT = o.Duration // a whole reply: its first token came with its last
	}
	r.canary.Observe(x.canaryRoute, x.version, o)
}

// serveCanary is /admin/canary: GET lists the rollouts; POST
// ?route=R&version=V&baseline=B[&steps=1,5,25&step_after=5m&min_requests=200
// &error_points=1&ttft_p95_factor=1.5&...] starts one; POST
// ?route=R&action=abort stops it (share 0); action=clear removes it.
func (r *Router) serveCanary(ctx *fasthttp.RequestCtx) {
	if r.canary == nil {
		canaryError(ctx, fasthttp.StatusNotFound, "no canary controller: the router uses a custom picker")
		return
	}
	switch {
	case ctx.IsGet():
		writeJSON(ctx, r.canary.Status())
		return
	case !ctx.IsPost():
		canaryError(ctx, fasthttp.StatusMethodNotAllowed, "use GET or POST")
		return
	}
	args := ctx.QueryArgs()
	rt := r.routes.Load().byName[string(args.Peek("route"))]
	if rt == nil {
		canaryError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("route %q: no such route", args.Peek("route")))
		return
	}
	route := rt.Model
	var err error
	switch action := string(args.Peek("action")); action {
	case "", "start":
		var spec canary.Spec
		if spec, err = specFromArgs(args); err == nil {
			err = r.canary.Start(route, spec, canary.FromAdmin)
		}
	case "abort":
		err = r.canary.Abort(route, string(args.Peek("reason")))
	case "clear":
		r.canary.Remove(route)
	default:
		err = fmt.Errorf("action %q: want start, abort or clear", action)
	}
	switch {
	case errors.Is(err, canary.ErrNoRollout):
		canaryError(ctx, fasthttp.StatusNotFound, err.Error())
	case err != nil:
		canaryError(ctx, fasthttp.StatusBadRequest, err.Error())
	default:
		writeJSON(ctx, r.canary.Status())
	}
}

func canaryError(ctx *fasthttp.RequestCtx, status int, msg string) {
	(&apiError{status: status, typ: typeInvalidRequest, message: msg}).write(ctx)
}

// specFromArgs reads a canary.Spec from query arguments named as its YAML
// fields; unknown arguments are an error.
func specFromArgs(args *fasthttp.Args) (canary.Spec, error) {
	var s canary.Spec
	t := &s.Thresholds
	var err error
	for k, v := range args.All() {
		val := string(v)
		switch key := string(k); key {
		case "route", "action":
		case "version":
			s.Version = val
		case "baseline":
			s.Baseline = val
		case "steps":
			for part := range strings.SplitSeq(val, ",") {
				f, perr := strconv.ParseFloat(strings.TrimSpace(part), 64)
				if perr != nil {
					return s, fmt.Errorf("steps: %q is not a number", part)
				}
				s.Steps = append(s.Steps, f)
			}
		case "step_after":
			s.StepAfter, err = time.ParseDuration(val)
		case "ttft_slack":
			t.TTFTSlack, err = time.ParseDuration(val)
		case "min_requests":
			s.MinRequests, err = strconv.Atoi(val)
		case "short_reply_tokens":
			t.ShortReply, err = strconv.Atoi(val)
		case "error_points":
			t.ErrorPoints, err = strconv.ParseFloat(val, 64)
		case "ttft_p95_factor":
			t.TTFTFactor, err = strconv.ParseFloat(val, 64)
		case "tokens_per_second_factor":
			t.TokensFactor, err = strconv.ParseFloat(val, 64)
		case "bad_reply_points":
			t.BadReplyPoints, err = strconv.ParseFloat(val, 64)
		default:
			return s, fmt.Errorf("unknown argument %q", key)
		}
		if err != nil {
			return s, fmt.Errorf("%s: %q: %w", k, val, err)
		}
	}
	return s, s.Validate()
}
