package mockllm

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// endpoint is a route of the mock.
type endpoint int

const (
	epNotFound endpoint = iota
	epChat
	epCompletions
	epEmbeddings
	epModels
	epHealth
	epEcho
	epMetrics
	epResponses
)

// route maps a request path to its endpoint.
func route(path []byte) endpoint {
	switch string(path) {
	case "/v1/chat/completions":
		return epChat
	case "/v1/completions":
		return epCompletions
	case "/v1/embeddings":
		return epEmbeddings
	case "/v1/responses":
		return epResponses
	case "/v1/models":
		return epModels
	case "/health":
		return epHealth
	case "/metrics":
		return epMetrics
	}
	if len(path) > len("/v1/") && string(path[:len("/v1/")]) == "/v1/" {
		return epEcho
	}
	return epNotFound
}

// isModel reports whether ep is a model endpoint, counted by Requests and
// subject to FailRate and Latency.
func (ep endpoint) isModel() bool {
	return ep == epChat || ep == epCompletions || ep == epEmbeddings || ep == epResponses
}

// Handler returns the mock's request handler, for serving it with a fasthttp
// server of your own. Close still ends its waits and streams, but only
// connections accepted through Serve or Start are closed and waited for.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// handle serves one request.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	ep := route(ctx.Path())
	var id int64
	if ep.isModel() {
		id = s.requests.Add(1)
	}
	if ep != epModels && ep != epHealth && ep != epMetrics {
		s.recordRequest(ctx.PostBody())
	}

	mode, ok := s.awaitMode()
	st := s.state.Load()
	setCommonHeaders(ctx, st)
	if !ok {
		ctx.SetConnectionClose()
		writeError(ctx, fasthttp.StatusServiceUnavailable, "mock server closed")
		return
	}
	if mode == ModeCloseConn {
		_ = ctx.Conn().Close()
		ctx.SetConnectionClose()
		return
	}

	switch ep {
	case epChat, epCompletions, epEmbeddings:
		if !ctx.IsPost() {
			writeError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed, use POST")
			return
		}
		s.serveModel(ctx, st, ep, id, mode)
	case epResponses:
		if !ctx.IsPost() {
			writeError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed, use POST")
			return
		}
		s.serveResponses(ctx, st, id, mode)
	case epModels:
		if !ctx.IsGet() {
			writeError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed, use GET")
			return
		}
		s.finish(ctx, mode, st.modelsBody)
	case epHealth:
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok")
	case epEcho:
		s.serveEcho(ctx, mode)
	case epMetrics:
		s.serveMetrics(ctx)
	default:
		writeError(ctx, fasthttp.StatusNotFound, "unknown path "+string(ctx.Path()))
	}
}

// serveModel answers a model endpoint: failure injection, request parsing,
// latency and the reply.
func (s *Server) serveModel(ctx *fasthttp.RequestCtx, st *state, ep endpoint, id int64, mode Mode) {
	cfg := &st.cfg
	fail, jitter := s.draw(cfg)
	if fail {
		writeError(ctx, cfg.FailStatus, "mock failure injected by FailRate")
		return
	}
	if ep == epEmbeddings {
		s.serveEmbeddings(ctx, st, jitter, mode)
		return
	}

	var req genRequest
	var err error
	if ep == epChat {
		err = req.parseChat(ctx.PostBody())
	} else {
		err = req.parseCompletion(ctx.PostBody())
	}
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "invalid JSON body: "+err.Error())
		return
	}
	if req.Model == "" {
		req.Model = cfg.Name
	}
	g := newGeneration(st, ep == epChat, id, &req)
	delay, gap, release := cfg.Latency+jitter, cfg.ChunkGap, func() {}
	if e := cfg.Engine; e != nil {
		if !s.engine.acquire(s.closing) {
			ctx.SetConnectionClose()
			writeError(ctx, fasthttp.StatusServiceUnavailable, "mock server closed")
			return
		}
		var once sync.Once
		release = func() { once.Do(s.engine.release) }
		delay += time.Duration(s.engine.prefill(promptOf(ctx.PostBody()))) * e.PrefillPerToken
		decode := time.Duration(g.words) * e.DecodePerToken
		if req.Stream {
			gap += decode / time.Duration(cfg.StreamChunks)
		} else {
			delay += decode
		}
	}
	if req.Stream {
		s.startStream(ctx, st, g, delay, gap, mode, release)
		return
	}
	ok := s.await(delay)
	release()
	if !ok {
		ctx.SetConnectionClose()
		writeError(ctx, fasthttp.StatusServiceUnavailable, "mock server closed")
		return
	}
	buf := s.getBuf()
	*buf = g.appendReply(*buf)
	s.finish(ctx, mode, *buf)
	s.putBuf(buf)
}

// finish sends a complete JSON body, cut in half in ModeCloseMidStream.
func (s *Server) finish(ctx *fasthttp.RequestCtx, mode Mode, body []byte) {
	ctx.SetContentType("application/json")
	if mode == ModeCloseMidStream {
		cutBody(ctx, body)
		return
	}
	ctx.SetBody(body)
}

// serveEcho answers any other /v1/ path with what arrived.
func (s *Server) serveEcho(ctx *fasthttp.RequestCtx, mode Mode) {
	body := ctx.PostBody()
	sum := sha256.Sum256(body)
	buf := s.getBuf()
	b := append(*buf, `{"path":`...)
	b = appendJSONString(b, string(ctx.Path()))
	b = append(b, `,"query":`...)
	b = appendJSONString(b, string(ctx.URI().QueryString()))
	b = append(b, `,"method":`...)
	b = appendJSONString(b, string(ctx.Method()))
	b = append(b, `,"content_type":`...)
	b = appendJSONString(b, string(ctx.Request.Header.ContentType()))
	b = append(b, `,"body_len":`...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, `,"body_sha256":"`...)
	b = hex.AppendEncode(b, sum[:])
	b = append(b, `"}`...)
	*buf = b
	s.finish(ctx, mode, b)
	s.putBuf(buf)
}

// handleBadRequest answers a request fasthttp could not read, with an
// OpenAI-shaped error.
func (s *Server) handleBadRequest(ctx *fasthttp.RequestCtx, err error) {
	status := fasthttp.StatusBadRequest
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.As(err, &small):
		status = fasthttp.StatusRequestHeaderFieldsTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status = fasthttp.StatusRequestEntityTooLarge
	case errors.As(err, &ne) && ne.Timeout():
		status = fasthttp.StatusRequestTimeout
	}
	ctx.Response.Header.Set("X-Mock-Instance", s.state.Load().cfg.Name)
	writeError(ctx, status, "cannot read request: "+err.Error())
}

// setCommonHeaders sets the headers every reply carries.
func setCommonHeaders(ctx *fasthttp.RequestCtx, st *state) {
	h := &ctx.Response.Header
	h.Set("X-Mock-Instance", st.cfg.Name)
	if v := ctx.Request.Header.Peek("Authorization"); len(v) > 0 {
		h.SetBytesV("X-Mock-Authorization", v)
	}
	if v := ctx.Request.Header.Peek("X-Request-Id"); len(v) > 0 {
		h.SetBytesV("X-Mock-Request-Id", v)
	}
}

// writeError sends an OpenAI-shaped error reply.
func writeError(ctx *fasthttp.RequestCtx, status int, msg string) {
	typ := "invalid_request_error"
	switch {
	case status == fasthttp.StatusTooManyRequests:
		typ = "rate_limit_error"
	case status >= 500:
		typ = "server_error"
	}
	b := make([]byte, 0, 128+len(msg))
	b = append(b, `{"error":{"message":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"type":"`...)
	b = append(b, typ...)
	b = append(b, `","param":null,"code":null}}`...)
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}
