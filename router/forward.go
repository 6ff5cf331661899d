package router

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/sse"
)

// serveModel forwards a model request: chat, completions, embeddings.
func (r *Router) serveModel(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		errMethod.write(ctx)
		return
	}
	body := ctx.PostBody()
	if len(body) > r.cfg.Load().MaxBodySize {
		errBodyTooLarge.write(ctx)
		return
	}
	if !gjson.ValidBytes(body) {
		errMalformed("syntax error").write(ctx)
		return
	}
	model := gjson.GetBytes(body, "model")
	if model.Type != gjson.String || model.Str == "" {
		errMissingModel.write(ctx)
		return
	}
	rt := r.routes.Load().byName[model.Str]
	if rt == nil {
		errUnknownModel(model.Str).write(ctx)
		return
	}
	if rt.UpstreamModel != "" && rt.UpstreamModel != model.Str {
		var err error
		if body, err = sjson.SetBytes(body, "model", rt.UpstreamModel); err != nil {
			errMalformed(err.Error()).write(ctx)
			return
		}
	}
	stream := gjson.GetBytes(body, "stream").Bool()
	r.forward(ctx, rt, model.Str, body, stream)
}

// forward tries up to 1+rt.Retries instances and relays the first reply that
// is not a retryable failure.
func (r *Router) forward(ctx *fasthttp.RequestCtx, rt *Route, model string, body []byte, stream bool) {
	breq := balancer.Request{Route: rt.Model, Service: rt.serviceKey, Model: model, Tags: rt.Tags}
	var lastErr *apiError
	for attempt := 0; attempt <= rt.Retries; attempt++ {
		picked, err := r.picker.Pick(&breq)
		if err != nil {
			if lastErr == nil {
				lastErr = errNoInstance(model)
			}
			break
		}
		in := picked.Instance
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		r.buildUpstream(ctx, req, in, body)
		req.SetTimeout(rt.Timeout)
		resp.StreamBody = stream
		start := r.now()
		err = r.upstreams.get(in).Do(req, resp)
		fasthttp.ReleaseRequest(req)

		if err != nil {
			fasthttp.ReleaseResponse(resp)
			picked.Done(balancer.Result{Err: err, Latency: r.now().Sub(start)})
			lastErr = classify(err)
			breq.Exclude = append(breq.Exclude, in.ID())
			continue
		}
		status := resp.StatusCode()
		if retryable(status) && attempt < rt.Retries {
			resp.SetConnectionClose() // do not wait to drain a body nobody reads
			fasthttp.ReleaseResponse(resp)
			picked.Done(balancer.Result{Status: status, Latency: r.now().Sub(start), Err: errStatus})
			breq.Exclude = append(breq.Exclude, in.ID())
			continue
		}
		if stream && resp.BodyStream() != nil && bytes.HasPrefix(resp.Header.ContentType(), []byte("text/event-stream")) {
			r.relayStream(ctx, resp, picked, start, rt.FirstByteTimeout)
			return
		}
		r.relayWhole(ctx, resp)
		fasthttp.ReleaseResponse(resp)
		res := balancer.Result{Status: status, Latency: r.now().Sub(start)}
		if status >= 500 || status == 429 {
			res.Err = errStatus
		}
		picked.Done(res)
		return
	}
	lastErr.write(ctx)
}

var errStatus = errors.New("router: upstream answered with an error status")

func retryable(status int) bool { return status >= 500 || status == fasthttp.StatusTooManyRequests }

// classify maps a transport error to the reply a client gets if no retry
// succeeds.
func classify(err error) *apiError {
	var ne net.Error
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return errUpstreamTimeout
	}
	return errUpstream(err.Error())
}

// hopHeaders are not forwarded in either direction.
var hopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// buildUpstream fills req for instance in. The client's Authorization is
// never forwarded.
func (r *Router) buildUpstream(ctx *fasthttp.RequestCtx, req *fasthttp.Request, in *discovery.Instance, body []byte) {
	ctx.Request.Header.CopyTo(&req.Header)
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	req.Header.Del("Authorization")
	req.Header.Del("Accept-Encoding") // replies are relayed as they come: keep them plain
	req.Header.SetHost(in.Addr())
	uri := req.URI()
	uri.SetScheme(in.Scheme)
	uri.SetHost(in.Addr())
	path := ctx.Path()
	if p, ok := bytes.CutPrefix(path, []byte("/v1")); ok {
		path = p
	}
	uri.SetPathBytes(append([]byte(in.BasePath), path...))
	uri.SetQueryStringBytes(ctx.URI().QueryString())
	if ip := ctx.RemoteIP(); ip != nil {
		if prior := ctx.Request.Header.Peek("X-Forwarded-For"); len(prior) > 0 {
			req.Header.Set("X-Forwarded-For", string(prior)+", "+ip.String())
		} else {
			req.Header.Set("X-Forwarded-For", ip.String())
		}
	}
	req.SetBodyRaw(body)
}

// relayWhole copies a complete upstream reply to the client.
func (r *Router) relayWhole(ctx *fasthttp.RequestCtx, resp *fasthttp.Response) {
	ctx.SetStatusCode(resp.StatusCode())
	copyHeaders(&ctx.Response.Header, &resp.Header)
	ctx.SetBody(resp.Body())
}

func copyHeaders(dst, src *fasthttp.ResponseHeader) {
	for k, v := range src.All() {
		switch string(k) {
		case "Content-Length", "Connection", "Keep-Alive", "Transfer-Encoding", "Date", "Server", "Trailer", "Upgrade":
			continue
		}
		dst.AddBytesKV(k, v)
	}
}

// relayStream relays an SSE reply event by event. It owns resp from here on.
// The stream writer runs after the handler has returned: it must not touch
// ctx, only the values copied into it here.
func (r *Router) relayStream(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, picked balancer.Picked,
	start time.Time, firstByte time.Duration) {
	ctx.SetStatusCode(resp.StatusCode())
	copyHeaders(&ctx.Response.Header, &resp.Header)
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	ctx.Response.Header.Set("X-Accel-Buffering", "no")
	ctx.Response.ImmediateHeaderFlush = true
	now := r.now
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		// A silent upstream is cut at the first-event deadline.
		watchdog := time.AfterFunc(firstByte, func() { _ = resp.CloseBodyStream() })
		res := balancer.Result{Status: resp.StatusCode()}
		done := false
		rd := sse.NewReader(resp.BodyStream(), 0)
		for {
			raw, data, err := rd.Next()
			if err != nil {
				if !done { // cut short: never return this connection to the pool
					resp.SetConnectionClose()
					if errors.Is(err, io.EOF) {
						err = io.ErrUnexpectedEOF
					}
					res.Err = err
					writeStreamError(w, err)
				}
				break
			}
			if res.TTFT == 0 {
				watchdog.Stop()
				res.TTFT = now().Sub(start)
			}
			if sse.IsDone(data) {
				done = true
			}
			if _, err := w.Write(raw); err != nil {
				res.Err = err
				resp.SetConnectionClose()
				break
			}
			if err := w.Flush(); err != nil { // the client went away
				res.Err = err
				resp.SetConnectionClose()
				break
			}
		}
		watchdog.Stop()
		fasthttp.ReleaseResponse(resp) // closes the upstream body stream
		res.Latency = now().Sub(start)
		picked.Done(res)
	})
}

// writeStreamError ends a stream whose upstream failed after the first byte
// with an SSE error event. It is never retried.
func writeStreamError(w *bufio.Writer, cause error) {
	e := errUpstream("stream interrupted: " + cause.Error())
	_, _ = w.WriteString("data: ")
	_, _ = w.Write(e.appendJSON(nil))
	_, _ = w.WriteString("\n\n")
	_ = w.Flush()
}
