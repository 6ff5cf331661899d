package router

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/discovery"
)

// requestIDHeader carries the request's ID to the instance and back to the
// client; a client's own ID is kept.
const requestIDHeader = "X-Request-Id"

// tagsHeader narrows a route's instances per request: "gpu=h100,tier=fast".
const tagsHeader = "X-Modelgate-Tags"

// begin starts the exchange of a request: its clock, ID and consumer.
func (r *Router) begin(ctx *fasthttp.RequestCtx, api string) (*exchange, *Config) {
	x := newExchange(r.now())
	x.api = api
	x.method = intern(ctx.Method(), fasthttp.MethodPost, fasthttp.MethodGet)
	x.path = intern(ctx.Path(), "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/v1/responses")
	if ip, ok := netip.AddrFromSlice(ctx.RemoteIP()); ok {
		x.clientIP = ip.Unmap()
	}
	x.userAgent = string(ctx.UserAgent())
	x.bytesIn = len(ctx.Request.Body())
	if id := ctx.Request.Header.Peek(requestIDHeader); len(id) > 0 && len(id) <= 128 {
		x.requestID = string(id)
	} else {
		x.requestID = newRequestID()
	}
	ctx.Response.Header.Set(requestIDHeader, x.requestID)
	return x, r.cfg.Load()
}

// fail answers the request with e and finishes its exchange.
func (r *Router) fail(ctx *fasthttp.RequestCtx, x *exchange, e *apiError) {
	e.write(ctx)
	ctx.Response.Header.Set(requestIDHeader, x.requestID)
	if x.degraded != "" {
		ctx.Response.Header.Set(degradedHeader, x.degraded)
	}
	x.status, x.errMsg = e.status, e.message
	x.bytesOut = len(ctx.Response.Body())
	r.finish(x, r.now())
}

// checkClient authenticates the request and checks its body's size. It
// reports whether the request may go on; if not, it has been answered.
func (r *Router) checkClient(ctx *fasthttp.RequestCtx, x *exchange, cfg *Config) bool {
	consumer, aerr := authenticate(ctx, cfg.Consumers)
	if aerr != nil {
		r.fail(ctx, x, aerr)
		return false
	}
	x.consumer = consumer
	if len(ctx.Request.Body()) > cfg.MaxBodySize {
		r.fail(ctx, x, errBodyTooLarge)
		return false
	}
	return true
}

// resolve finds the route of x.model and checks that the consumer may use
// it. It returns nil once it has answered the request with the error.
func (r *Router) resolve(ctx *fasthttp.RequestCtx, x *exchange) *Route {
	rt := r.routes.Load().lookup(x.model)
	if rt == nil {
		r.fail(ctx, x, errUnknownModel(x.model))
		return nil
	}
	x.route, x.meters = rt, rt.meters
	if !x.consumer.allows(rt, x.model) {
		r.fail(ctx, x, errModelNotAllowed(x.model))
		return nil
	}
	return rt
}

// serveModel forwards a model request: chat, completions, embeddings,
// responses.
func (r *Router) serveModel(ctx *fasthttp.RequestCtx, api string) {
	x, cfg := r.begin(ctx, api)
	if !ctx.IsPost() {
		r.fail(ctx, x, errMethod)
		return
	}
	if !r.checkClient(ctx, x, cfg) {
		return
	}
	body := ctx.PostBody()
	if aerr := r.readJSON(x, cfg, body); aerr != nil {
		r.fail(ctx, x, aerr)
		return
	}
	rt := r.resolve(ctx, x)
	if rt == nil {
		return
	}
	x.stream = api != "embeddings" && x.req.Stream
	if rt.StickyHeader != "" {
		x.sticky = string(ctx.Request.Header.Peek(rt.StickyHeader))
	}
	tags, terr := parseTags(ctx.Request.Header.Peek(tagsHeader))
	if terr != nil {
		r.fail(ctx, x, terr)
		return
	}
	if r.admit(ctx, x, rt, body) {
		return
	}
	// The Responses API reports usage in its response.completed event,
	// unasked (and has no stream_options.include_usage).
	x.stripUsage = x.stream && *cfg.InjectUsage && !x.req.IncludeUsage && api != "responses"
	r.forward(ctx, x, rt, body, tags)
}

// forward tries the route, then its fallbacks, and relays the first reply
// that is not a retryable failure.
func (r *Router) forward(ctx *fasthttp.RequestCtx, x *exchange, rt *Route, body []byte, tags map[string]string) {
	var lastErr *apiError
	routes := r.routes.Load()
	stale, hasStale := x.ticket.Stale()
	for i, name := range append([]string{""}, rt.Fallback...) {
		cur := rt
		if i == 0 && x.skipPrimary {
			continue
		}
		if i > 0 {
			if cur = routes.byName[name]; cur == nil {
				continue
			}
			x.route, x.meters = cur, cur.meters
		}
		// Unless nothing else remains, a final 5xx falls through to the
		// fallbacks or the stale reply.
		last := i == len(rt.Fallback) && !hasStale
		done, err := r.attempts(ctx, x, cur, body, tags, last)
		if done {
			return
		}
		lastErr = err
	}
	if hasStale && x.attempts > 0 { // stale-if-error: an old answer beats a failed one
		x.errMsg = lastErr.message
		r.serveCached(ctx, x, stale, false)
		return
	}
	if lastErr == nil {
		lastErr = errNoInstance(x.model)
	}
	r.fail(ctx, x, lastErr)
}

// attempts tries up to 1+rt.Retries instances of one route. It reports
// whether the request was answered; if not, the error to answer with. When
// last is false (a fallback route or a stale reply remains), a final
// 5xx or 429 is not relayed but returned as an error.
func (r *Router) attempts(ctx *fasthttp.RequestCtx, x *exchange, rt *Route, body []byte, tags map[string]string, last bool) (bool, *apiError) {
	upBody := upstreamBody(x, rt, body)
	breq := balancer.Request{Route: rt.Model, Service: rt.serviceKey, Model: x.model, Tags: tags, StickyKey: x.sticky}
	sp := x.req.PromptSpan
	if x.api == "responses" {
		sp = x.req.InputSpan
	}
	if x.api != "passthrough" && sp.End > sp.Start && sp.End <= len(body) {
		breq.Prompt = body[sp.Start:sp.End]
	}
	var lastErr *apiError
	maxReply := r.cfg.Load().MaxReplySize
	otherModels := false // a pattern route's instances passed over for serving other models
	for attempt := 0; attempt <= rt.Retries; attempt++ {
		picked, err := r.picker.Pick(&breq)
		if err != nil {
			if lastErr == nil && otherModels {
				lastErr = errUnknownModel(x.model)
			}
			if lastErr == nil {
				lastErr = errNoInstance(x.model)
			}
			return false, lastErr
		}
		in := picked.Instance
		// Never sent: pick another, not an attempt. A pattern route's
		// instance must serve the very name it would get.
		skipModel := rt.pattern && in.ModelListed && !in.Serves(rt.sentModel(x.model))
		if skipModel || !r.credentialKnown(in) {
			otherModels = otherModels || skipModel
			picked.Done(balancer.Result{Canceled: true})
			breq.Exclude = append(breq.Exclude, in.ID())
			attempt--
			continue
		}
		x.attempts++
		x.instance, x.service = in.Addr(), in.ServiceKey()
		r.canaryPicked(x, rt, in)
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		r.buildUpstream(ctx, req, in, upBody, x, x.api != "passthrough")
		// The request's timeout is fasthttp's deadline for sending it and
		// reading the reply headers; the body is then held to the
		// first-byte timeout between reads and to the attempt's timeout.
		req.SetTimeout(min(rt.FirstByteTimeout, rt.Timeout))
		resp.StreamBody = true
		start, wall := r.now(), time.Now()
		err = r.upstreams.get(in, rt.IdleTimeout, r.tlsFor(in)).Do(req, resp)
		fasthttp.ReleaseRequest(req)
		im := r.meters.instance(in)
		failed := func(err error, status int) {
			resp.SetConnectionClose() // do not drain a body nobody reads
			fasthttp.ReleaseResponse(resp)
			picked.Done(balancer.Result{Err: err, Status: status, Latency: r.now().Sub(start)})
			r.canaryFailed(x, err, status, start)
			breq.Exclude = append(breq.Exclude, in.ID())
		}
		if err != nil {
			im.request(0).Inc()
			failed(err, 0)
			lastErr = classify(err)
			continue
		}
		status := resp.StatusCode()
		im.request(status).Inc()
		secret := r.credential(in)
		scrubHeaders(&resp.Header, secret)
		if rt.retries(status) && (attempt < rt.Retries || !last) {
			failed(errStatus, status)
			lastErr = errUpstream("status " + strconv.Itoa(status))
			continue
		}
		armReads(resp, rt.FirstByteTimeout, wall.Add(rt.Timeout))
		if (x.stream || x.api == "passthrough") && resp.BodyStream() != nil && isEventStream(resp) {
			src, err := openEvents(resp)
			if err != nil { // nothing reached the client yet: try another instance
				failed(err, status)
				lastErr = classify(err)
				continue
			}
			x.status, x.stream = status, true
			r.relayStream(ctx, x, resp, src, picked, start, rt.FirstByteTimeout)
			return true, nil
		}
		x.stream = false // an error or a whole reply, even if a stream was asked
		if err := readWhole(ctx, resp, maxReply); err != nil {
			failed(err, status)
			lastErr = classify(err)
			continue
		}
		x.status = status
		if status >= 400 {
			scrubBody(&ctx.Response, secret)
		}
		if status == fasthttp.StatusOK {
			if x.ticket.Storable() {
				x.reply, x.replyType = ctx.Response.Body(), string(ctx.Response.Header.ContentType())
			}
			x.usage = usageFromJSON(ctx.Response.Body())
			x.finishReason = r.canaryFinishReason(x, ctx.Response.Body())
			if !x.usage.found {
				x.outLen = generatedBytes(x.api, ctx.Response.Body())
			}
		}
		fasthttp.ReleaseResponse(resp)
		res := balancer.Result{Status: status, Latency: r.now().Sub(start)}
		if retryable(status) {
			res.Err = errStatus
		}
		picked.Done(res)
		x.bytesOut = len(ctx.Response.Body())
		r.finish(x, r.now())
		return true, nil
	}
	return false, lastErr
}

var errStatus = errors.New("router: upstream answered with an error status")

func retryable(status int) bool { return status >= 500 || status == fasthttp.StatusTooManyRequests }

// classify maps a transport error to the reply a client gets if no retry
// succeeds.
func classify(err error) *apiError {
	if errors.Is(err, errReplyTooLarge) {
		return errUpstream(err.Error())
	}
	var ne net.Error
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return errUpstreamTimeout
	}
	return errUpstream(err.Error())
}

// upstreamHeader reports whether the client's request header k is
// forwarded to an instance. Hop-by-hop headers never are; nor the client's
// Authorization (the instance's own credential is sent instead), modelgate's
// own request headers, or the headers the router sets itself: the
// forwarding headers (a client's are dropped), Accept-Encoding, X-Request-Id,
// Host and Content-Length. Content-Type is set for a JSON body.
func upstreamHeader(k []byte, jsonBody bool) bool {
	var low [24]byte
	if len(k) > len(low) {
		return true // longer than any name below
	}
	for i, c := range k {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	switch string(low[:len(k)]) {
	case "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
		"te", "trailer", "transfer-encoding", "upgrade", // hop-by-hop
		"authorization", "x-modelgate-tags", "x-modelgate-model",
		"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded", "x-real-ip",
		"accept-encoding", "x-request-id", "host", "content-length":
		return false
	case "content-type":
		return !jsonBody
	}
	return true
}

// buildUpstream fills req for instance in. The client's Authorization is
// never forwarded; the instance's own credential, if it names one, is. A
// model API body was parsed as JSON already, so it goes as JSON whatever
// content type the client sent (curl -d sends a form type, which FastAPI
// servers refuse).
func (r *Router) buildUpstream(ctx *fasthttp.RequestCtx, req *fasthttp.Request, in *discovery.Instance, body []byte, x *exchange, jsonBody bool) {
	h := &req.Header
	h.SetMethodBytes(ctx.Method())
	for k, v := range ctx.Request.Header.All() {
		if upstreamHeader(k, jsonBody) {
			h.AddBytesKV(k, v)
		}
	}
	// Plain replies: usage is read from them and the cache keeps them as
	// they are. One compressed anyway is decoded (readWhole, openEvents).
	h.Set(fasthttp.HeaderAcceptEncoding, "identity")
	if secret := r.credential(in); secret != "" {
		h.Set(fasthttp.HeaderAuthorization, "Bearer "+secret)
	}
	if jsonBody {
		h.SetContentType("application/json")
	}
	h.Set(requestIDHeader, x.requestID)
	h.SetHost(in.Addr())
	setForwarded(ctx, h, x.clientIP)
	uri := req.URI()
	uri.SetScheme(in.Scheme)
	uri.SetHost(in.Addr())
	path := ctx.Path()
	if p, ok := bytes.CutPrefix(path, []byte("/v1")); ok {
		path = p
	}
	uri.SetPathBytes(append([]byte(in.BasePath), path...))
	uri.SetQueryStringBytes(ctx.URI().QueryString())
	req.SetBodyRaw(body)
}

// setForwarded appends the client's address ip to X-Forwarded-For and sets
// X-Forwarded-Host and X-Forwarded-Proto to what the client reached. The
// client's own forwarding headers were not copied (upstreamHeader).
func setForwarded(ctx *fasthttp.RequestCtx, h *fasthttp.RequestHeader, ip netip.Addr) {
	if ip.IsValid() {
		var buf [96]byte
		v := buf[:0]
		if prior := ctx.Request.Header.Peek("X-Forwarded-For"); len(prior) > 0 {
			v = append(append(v, prior...), ", "...)
		}
		h.SetBytesV("X-Forwarded-For", ip.AppendTo(v))
	}
	if host := ctx.Request.Header.Host(); len(host) > 0 {
		h.SetBytesV("X-Forwarded-Host", host)
	}
	proto := "http"
	if ctx.IsTLS() {
		proto = "https"
	}
	h.Set("X-Forwarded-Proto", proto)
}

func copyHeaders(dst, src *fasthttp.ResponseHeader) {
	for k, v := range src.All() {
		switch string(k) {
		case "Content-Length", "Connection", "Keep-Alive", "Transfer-Encoding", "Date", "Server", "Trailer", "Upgrade", requestIDHeader:
			continue
		}
		dst.AddBytesKV(k, v)
	}
}

// parseTags reads "k=v,k2=v2".
func parseTags(h []byte) (map[string]string, *apiError) {
	if len(h) == 0 {
		return nil, nil
	}
	tags := map[string]string{}
	for part := range strings.SplitSeq(string(h), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || k == "" {
			return nil, &apiError{status: 400, typ: typeInvalidRequest, code: "invalid_tags",
				message: tagsHeader + ": want key=value pairs separated by commas"}
		}
		tags[k] = v
	}
	return tags, nil
}
