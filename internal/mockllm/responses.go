package mockllm

import (
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// responsesRequest is the part of a Responses API request the mock reads.
type responsesRequest struct {
	Model           string          `json:"model"`
	Input           json.RawMessage `json:"input"`
	Instructions    string          `json:"instructions"`
	Stream          bool            `json:"stream"`
	MaxOutputTokens int             `json:"max_output_tokens"`
}

// parseResponses fills r from a Responses API body: input is a string or
// an array of items whose content is a string or parts with "text".
// Prompt tokens are the words of input and instructions.
func (r *genRequest) parseResponses(body []byte) error {
	var rr responsesRequest
	if err := json.Unmarshal(body, &rr); err != nil {
		return err
	}
	*r = genRequest{Model: rr.Model, Stream: rr.Stream, MaxTokens: max(rr.MaxOutputTokens, 0),
		PromptTokens: countWords(rr.Instructions)}
	switch firstByte(rr.Input) {
	case '"':
		var s string
		if err := json.Unmarshal(rr.Input, &s); err != nil {
			return err
		}
		r.PromptTokens += countWords(s)
	case '[':
		var items []struct {
			Content contentWords `json:"content"`
		}
		if err := json.Unmarshal(rr.Input, &items); err != nil {
			return err
		}
		for _, it := range items {
			r.PromptTokens += int(it.Content) + 1
		}
	case 0, 'n':
	default:
		return errBadShape
	}
	return nil
}

// serveResponses answers POST /v1/responses the way OpenAI's API does: a
// response object, or a stream of typed events (response.created,
// response.in_progress, output item and content part added, one
// response.output_text.delta per chunk, the matching done events, then
// response.completed with usage as input_tokens and output_tokens) that
// ends without [DONE].
func (s *Server) serveResponses(ctx *fasthttp.RequestCtx, st *state, id int64, mode Mode) {
	cfg := &st.cfg
	fail, jitter := s.draw(cfg)
	if fail {
		writeError(ctx, cfg.FailStatus, "mock failure injected by FailRate")
		return
	}
	var req genRequest
	if err := req.parseResponses(ctx.PostBody()); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "invalid JSON body: "+err.Error())
		return
	}
	if req.Model == "" {
		req.Model = cfg.Name
	}
	g := newGeneration(st, true, id, &req)
	r := responseWriter{g: &g, id: "resp_mock_" + strconv.FormatInt(id, 10), item: "msg_mock_" + strconv.FormatInt(id, 10)}
	if !req.Stream {
		if !s.await(cfg.Latency + jitter) {
			ctx.SetConnectionClose()
			writeError(ctx, fasthttp.StatusServiceUnavailable, "mock server closed")
			return
		}
		s.finish(ctx, mode, r.object(nil, "completed", true))
		return
	}
	x := &responseStream{s: s, delay: cfg.Latency + jitter, gap: cfg.ChunkGap, dropAt: -1}
	x.events = r.events(st.cfg.StreamChunks)
	x.deltas = st.cfg.StreamChunks
	if mode == ModeCloseMidStream {
		x.dropAt = 4 + x.deltas/2 // within the deltas
	}
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	ctx.Response.ImmediateHeaderFlush = true
	ctx.SetBodyStream(x, -1)
}

// responseWriter renders one generation as Responses API JSON.
type responseWriter struct {
	g        *generation
	id, item string
	seq      int
}

// object appends the response object in a status; with done, its output
// and usage.
func (r *responseWriter) object(b []byte, status string, done bool) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, r.id...)
	b = append(b, `","object":"response","created_at":`...)
	b = strconv.AppendInt(b, r.g.created, 10)
	b = append(b, `,"status":"`...)
	b = append(b, status...)
	b = append(b, `","model":`...)
	b = appendJSONString(b, r.g.model)
	b = append(b, `,"output":[`...)
	if done {
		b = r.message(b, "completed", r.g.text)
	}
	b = append(b, `],"parallel_tool_calls":true,"tool_choice":"auto","tools":[],"usage":`...)
	if done && r.g.usage {
		b = append(b, `{"input_tokens":`...)
		b = strconv.AppendInt(b, int64(r.g.promptTokens), 10)
		b = append(b, `,"input_tokens_details":{"cached_tokens":0},"output_tokens":`...)
		b = strconv.AppendInt(b, int64(r.g.words), 10)
		b = append(b, `,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":`...)
		b = strconv.AppendInt(b, int64(r.g.promptTokens+r.g.words), 10)
		b = append(b, '}')
	} else {
		b = append(b, "null"...)
	}
	return append(b, '}')
}

// message appends the output message item.
func (r *responseWriter) message(b []byte, status, text string) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, r.item...)
	b = append(b, `","type":"message","status":"`...)
	b = append(b, status...)
	b = append(b, `","role":"assistant","content":[`...)
	if status == "completed" {
		b = r.part(b, text)
	}
	return append(b, "]}"...)
}

func (r *responseWriter) part(b []byte, text string) []byte {
	b = append(b, `{"type":"output_text","text":`...)
	b = appendJSONString(b, text)
	return append(b, `,"annotations":[]}`...)
}

// event appends one SSE event of type typ whose data object holds the
// fields body appends (each starting with a comma).
func (r *responseWriter) event(typ string, body func([]byte) []byte) []byte {
	b := append([]byte("event: "), typ...)
	b = append(b, "\ndata: {\"type\":\""...)
	b = append(b, typ...)
	b = append(b, `","sequence_number":`...)
	b = strconv.AppendInt(b, int64(r.seq), 10)
	r.seq++
	b = body(b)
	return append(b, "}\n\n"...)
}

// events renders the whole stream, with chunks output_text deltas.
func (r *responseWriter) events(chunks int) [][]byte {
	g := r.g
	ids := func(b []byte) []byte {
		b = append(b, `,"item_id":"`...)
		b = append(b, r.item...)
		return append(b, `","output_index":0,"content_index":0`...)
	}
	out := [][]byte{
		r.event("response.created", func(b []byte) []byte { return r.object(append(b, `,"response":`...), "in_progress", false) }),
		r.event("response.in_progress", func(b []byte) []byte { return r.object(append(b, `,"response":`...), "in_progress", false) }),
		r.event("response.output_item.added", func(b []byte) []byte {
			return r.message(append(b, `,"output_index":0,"item":`...), "in_progress", "")
		}),
		r.event("response.content_part.added", func(b []byte) []byte { return r.part(append(ids(b), `,"part":`...), "") }),
	}
	for i := range chunks {
		text := g.st.chunkText(i, chunks, g.words)
		out = append(out, r.event("response.output_text.delta", func(b []byte) []byte {
			return appendJSONString(append(ids(b), `,"delta":`...), text)
		}))
	}
	out = append(out,
		r.event("response.output_text.done", func(b []byte) []byte {
			return appendJSONString(append(ids(b), `,"text":`...), g.text)
		}),
		r.event("response.content_part.done", func(b []byte) []byte { return r.part(append(ids(b), `,"part":`...), g.text) }),
		r.event("response.output_item.done", func(b []byte) []byte {
			return r.message(append(b, `,"output_index":0,"item":`...), "completed", g.text)
		}),
		r.event("response.completed", func(b []byte) []byte { return r.object(append(b, `,"response":`...), "completed", true) }),
	)
	return out
}

// responseStream sends rendered events: the first after delay, each delta
// after the next gap; in ModeCloseMidStream it drops the connection at
// event dropAt.
type responseStream struct {
	s          *Server
	events     [][]byte
	delay, gap time.Duration
	deltas     int
	dropAt     int
}

// SupportsBodyWriteTo tells fasthttp to drive the stream with WriteTo.
func (x *responseStream) SupportsBodyWriteTo() bool { return true }

// WriteTo writes and flushes the events one by one.
func (x *responseStream) WriteTo(w io.Writer) (n int64, err error) {
	if hook := x.s.onStreamEnd; hook != nil {
		defer func() { hook(err) }()
	}
	for i, ev := range x.events {
		switch {
		case i == 0 && !x.s.await(x.delay):
			return n, errServerDown
		case i > 4 && i < 4+x.deltas && !x.s.pause(x.gap):
			return n, errServerDown
		case i == x.dropAt:
			return n, errDropped
		}
		m, err := writeEvent(w, ev)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Read is never used by fasthttp (WriteTo is); it is there for io.Reader.
func (x *responseStream) Read(p []byte) (int, error) {
	if len(x.events) == 0 {
		return 0, io.EOF
	}
	n := copy(p, x.events[0])
	if x.events[0] = x.events[0][n:]; len(x.events[0]) == 0 {
		x.events = x.events[1:]
	}
	return n, nil
}
