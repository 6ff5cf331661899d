package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"
)

// NewClient returns a client for one host:port.
func NewClient(addr string, stream bool) *fasthttp.HostClient {
	return &fasthttp.HostClient{Addr: addr, MaxConns: 1 << 15, StreamResponseBody: stream,
		ReadBufferSize: 16 << 10, MaxIdleConnDuration: 10 * time.Second,
		Dial: func(addr string) (net.Conn, error) { return fasthttp.DialTimeout(addr, 10*time.Second) }}
}

// ChatBody is a chat request for model.
func ChatBody(model string, stream bool) []byte {
	if stream {
		return []byte(`{"model":"` + model + `","stream":true,"messages":[{"role":"user","content":"hello there"}]}`)
	}
	return []byte(`{"model":"` + model + `","messages":[{"role":"user","content":"hello there"}]}`)
}

// Reply is the outcome of one non-streaming request.
type Reply struct {
	ID       string
	Sent     time.Time
	Latency  time.Duration
	Status   int    // 0: no HTTP reply at all
	Err      error  // transport error
	Instance string // X-Mock-Instance
	// Mismatch: the reply carries another request's ID.
	Mismatch bool
	// Code is the OpenAI error code of an error reply.
	Code string
}

// Chat sends one non-streaming chat request with X-Request-Id id.
func Chat(hc *fasthttp.HostClient, model, id string, timeout time.Duration) Reply {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + hc.Addr + "/v1/chat/completions")
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	req.Header.Set("X-Request-Id", id)
	req.SetBody(ChatBody(model, false))
	r := Reply{ID: id, Sent: time.Now()}
	r.Err = hc.DoTimeout(req, resp, timeout)
	r.Latency = time.Since(r.Sent)
	if r.Err != nil {
		return r
	}
	r.Status = resp.StatusCode()
	r.Instance = string(resp.Header.Peek("X-Mock-Instance"))
	if r.Status != 200 {
		r.Code = gjson.GetBytes(resp.Body(), "error.code").String()
	}
	if r.Status == 200 {
		r.Mismatch = string(resp.Header.Peek("X-Request-Id")) != id || string(resp.Header.Peek("X-Mock-Request-Id")) != id
	}
	return r
}

// StreamResult is the outcome of one streamed request, as its client saw it.
type StreamResult struct {
	Instance   string
	Degraded   string // X-Modelgate-Degraded: shed, queue or cache
	Status     int
	TTFT       time.Duration   // from sending to the first event
	Gaps       []time.Duration // between consecutive events
	Events     int             // data events, [DONE] included
	ContentLen int             // bytes of generated text
	Done       bool            // ended with data: [DONE]
	ErrorEvent bool            // an error event arrived
	Err        error
}

// Stream sends a streaming chat request and reads its events to the end.
// opened, if not nil, is called with the answering instance once the
// reply's headers arrived.
func Stream(hc *fasthttp.HostClient, model string, keepGaps bool, opened func(instance string)) StreamResult {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + hc.Addr + "/v1/chat/completions")
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	req.SetBody(ChatBody(model, true))
	var r StreamResult
	start := time.Now()
	if r.Err = hc.Do(req, resp); r.Err != nil {
		return r
	}
	r.Status = resp.StatusCode()
	r.Instance = string(resp.Header.Peek("X-Mock-Instance"))
	r.Degraded = string(resp.Header.Peek("X-Modelgate-Degraded"))
	if opened != nil {
		opened(r.Instance)
	}
	body := resp.BodyStream()
	if body == nil {
		r.Err = fmt.Errorf("status %d: no stream: %s", r.Status, resp.Body())
		return r
	}
	defer resp.CloseBodyStream() //nolint:errcheck
	br := bufio.NewReaderSize(body, 8<<10)
	var last time.Time
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, io.EOF) && r.Done {
				return r
			}
			r.Err = fmt.Errorf("after %d events: %w", r.Events, err)
			return r
		}
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		now := time.Now()
		if r.Events == 0 {
			r.TTFT = now.Sub(start)
		} else if keepGaps {
			r.Gaps = append(r.Gaps, now.Sub(last))
		}
		last = now
		r.Events++
		data = bytes.TrimSpace(data)
		if bytes.Equal(data, []byte("[DONE]")) {
			r.Done = true
			continue // read to EOF: nothing may follow
		}
		if r.Done {
			r.Err = errors.New("event after [DONE]")
			return r
		}
		if gjson.GetBytes(data, "error").Exists() {
			r.ErrorEvent = true
		}
		r.ContentLen += len(gjson.GetBytes(data, "choices.0.delta.content").Str)
	}
}
