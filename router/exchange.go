package router

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/modelgate/modelgate/degrade"
	"github.com/modelgate/modelgate/internal/reqjson"
)

// exchange is the record of one client request from arrival to its last
// byte: what the metrics and the access log are made of. For a streamed
// reply the stream writer finishes it, after the handler has returned, so it
// holds copies and never a *fasthttp.RequestCtx.
type exchange struct {
	start     time.Time
	api       string          // chat, completions, embeddings, passthrough
	model     string          // as the client sent it
	req       reqjson.Request // the body as read once, for model requests
	route     *Route
	meters    *modelMeters
	consumer  *Consumer
	requestID string
	instance  string
	service   string // the pool key of the instance last tried
	// The request's head, copied for the access log.
	method, path, userAgent string
	clientIP                netip.Addr // formatted only when the line is logged
	bytesIn, bytesOut       int
	status                  int
	stream                  bool
	// stripUsage: usage was asked upstream for accounting only, so the
	// usage-only chunk is not passed to the client.
	stripUsage bool
	promptLen  int // bytes of prompt text, for estimates
	outLen     int // bytes of generated text seen in a stream
	usage      usage
	ttft       time.Duration
	attempts   int // upstream attempts, over every route tried
	errMsg     string
	sticky     string // the route's sticky header value

	// Canary accounting (router/canary.go).
	canaryRoute  string // route of the attempt relayed, "" if none to report
	version      string // its instance's version
	watched      bool   // the route has a running rollout
	finishReason string
	streamErr    error // how the relayed stream ended
	responded    bool  // a Responses stream sent its last event (response.completed, ...)

	// Degradation state.
	degraded    string         // "", shed, queue or cache
	skipPrimary bool           // shed: go to the fallback routes only
	ticket      degrade.Ticket // the gate's admission, settled in finish
	fromCache   bool
	capture     []byte // a stream's events, for the reply cache
	reply       []byte // a complete 200 reply the ticket may store
	replyType   string // its content type
}

var exchangePool = sync.Pool{New: func() any { return new(exchange) }}

func newExchange(now time.Time) *exchange {
	x := exchangePool.Get().(*exchange)
	*x = exchange{start: now}
	return x
}

// newRequestID returns 16 random hex digits. An ID names a request in logs
// and replies; it is no secret, so the runtime's fast generator serves.
func newRequestID() string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// finish records x in the metrics and the access log and recycles it.
func (r *Router) finish(x *exchange, end time.Time) {
	mm := x.meters
	if mm == nil {
		mm = r.meters.model(unknownModel)
	}
	mm.request(x.status, x.stream).Inc()
	mm.total.Add(1)
	mm.duration.Update(seconds(end.Sub(x.start)))
	if x.status == 200 && x.route != nil && !x.fromCache {
		if !x.usage.found {
			x.usage = usage{input: estimateTokens(x.promptLen), output: estimateTokens(x.outLen)}
		}
		mm.addTokens(x.usage)
		if x.ttft > 0 {
			mm.ttft.Update(seconds(x.ttft))
		}
	}
	r.settle(x)
	r.canaryFinished(x, end)
	if x.consumer != nil {
		cm := r.meters.consumer(x.consumer.Name)
		cm.requests.Inc()
		cm.tokens[0].Add(x.usage.input)
		cm.tokens[1].Add(x.usage.output)
	}
	r.logAccess(x, end)
	exchangePool.Put(x)
}

func (r *Router) logAccess(x *exchange, end time.Time) {
	cfg := r.cfg.Load().AccessLog
	if cfg.Disabled || (x.status < 400 && cfg.Sample < 1 && rand.Float64() >= cfg.Sample) {
		return
	}
	// 5xx are the gateway's or an instance's failures; 4xx are the
	// client's mistakes, logged at debug so that they do not read as ours.
	var ev *zerolog.Event
	switch {
	case x.status >= 500:
		ev = r.access.Warn()
	case x.status >= 400:
		ev = r.access.Debug()
	default:
		ev = r.access.Info()
	}
	route, consumer := "", ""
	if x.route != nil {
		route = x.route.Model
	}
	if x.consumer != nil {
		consumer = x.consumer.Name
	}
	respType, source := "normal", "usage"
	if x.stream {
		respType = "stream"
	}
	if !x.usage.found {
		source = "estimated"
	}
	degraded := x.degraded
	ev.Str("api", x.api).Str("model", x.model).Str("route", route).Str("consumer", consumer).
		Str("request_id", x.requestID).Str("instance", x.instance).Str("service", x.service).Int("status", x.status).
		Str("method", x.method).Str("path", x.path).Str("client_ip", ipString(x.clientIP)).Str("user_agent", x.userAgent).
		Int("bytes_in", x.bytesIn).Int("bytes_out", x.bytesOut).
		Str("response_type", respType).Int("input_token", x.usage.input).Int("output_token", x.usage.output).
		Str("token_source", source).
		Int64("llm_first_token_duration", x.ttft.Milliseconds()).
		Int64("llm_service_duration", end.Sub(x.start).Milliseconds()).
		Str("degraded", degraded).Int("retries", max(x.attempts-1, 0))
	if x.errMsg != "" {
		ev.Str("error", x.errMsg)
	}
	ev.Send()
}

// settle tells the gate how the request ended.
func (r *Router) settle(x *exchange) {
	o := degrade.Outcome{Status: x.status, Attempts: x.attempts, FromCache: x.fromCache, TTFT: x.ttft,
		Failed: x.status >= 500 || x.status == 429 || x.errMsg != ""}
	if !x.fromCache {
		o.Tokens = x.usage.input + x.usage.output
	}
	if x.route != nil {
		o.Route = x.route.Model
	}
	if x.reply != nil && x.errMsg == "" {
		o.Reply, o.Stream, o.ContentType = x.reply, x.stream, x.replyType
	}
	x.ticket.Settle(o)
	x.reply, x.capture = nil, nil
}

func ipString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// intern returns b as a string without allocating when it is one of
// known, the few values most requests carry.
func intern(b []byte, known ...string) string {
	for _, k := range known {
		if string(b) == k {
			return k
		}
	}
	return string(b)
}
