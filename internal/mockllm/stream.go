package mockllm

import (
	"io"
	"time"

	"github.com/valyala/fasthttp"
)

// doneEvent ends every complete stream.
const doneEvent = "data: [DONE]\n\n"

// flusher is a writer that can push buffered bytes to the connection.
type flusher interface {
	Flush() error
}

// sseStream is the body of a streamed reply. fasthttp drives it from the
// connection's goroutine through WriteTo, writing each event as one HTTP chunk
// and flushing it to the socket at once, so pacing needs no extra goroutine and
// a client that has gone surfaces as a write error. Nothing in it refers to the
// request context.
type sseStream struct {
	s     *Server
	g     generation
	delay time.Duration
	gap   time.Duration
	// chunks is the number of content chunks; dropAt is the content chunk
	// before which the connection is dropped, or -1.
	chunks int
	dropAt int
	step   int

	release func() // called once by Close
	prefix  []byte // start of every chunk event, see appendStreamPrefix
	buf     []byte // the event being sent
	pending []byte // unread part of buf, for Read
}

// startStream makes ctx's reply a paced event stream for g.
// release is called once the stream ends.
func (s *Server) startStream(ctx *fasthttp.RequestCtx, st *state, g generation, delay, gap time.Duration, mode Mode, release func()) {
	x, ok := s.streams.Get().(*sseStream)
	if !ok {
		x = &sseStream{}
	}
	x.s, x.g, x.delay, x.gap, x.release = s, g, delay, gap, release
	x.chunks, x.dropAt, x.step = st.cfg.StreamChunks, -1, 0
	if mode == ModeCloseMidStream {
		x.dropAt = x.chunks / 2
	}
	x.prefix = g.appendStreamPrefix(x.prefix[:0])
	x.buf, x.pending = x.buf[:0], nil

	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	ctx.Response.ImmediateHeaderFlush = true
	ctx.SetBodyStream(x, -1)
}

// next renders the next event into x.buf after its pause; it returns io.EOF
// after [DONE], errDropped where ModeCloseMidStream cuts the stream, and
// errServerDown if the server closes during a pause.
func (x *sseStream) next() ([]byte, error) {
	i := x.step
	x.step++
	if i == 0 && !x.s.await(x.delay) {
		return nil, errServerDown
	}
	b := x.buf[:0]
	if x.g.chat {
		if i == 0 {
			x.buf = appendRoleChoices(append(b, x.prefix...))
			x.buf = append(x.buf, "\n\n"...)
			return x.buf, nil
		}
		i--
	}
	if i < x.chunks {
		if i == x.dropAt {
			return nil, errDropped
		}
		if i > 0 && !x.s.pause(x.gap) {
			return nil, errServerDown
		}
		text := x.g.st.chunkText(i, x.chunks, x.g.words)
		x.buf = x.g.appendContentChoices(append(b, x.prefix...), text)
		x.buf = append(x.buf, "\n\n"...)
		return x.buf, nil
	}
	i -= x.chunks
	if i == 0 {
		x.buf = x.g.appendFinalChoices(append(b, x.prefix...))
		x.buf = append(x.buf, "\n\n"...)
		return x.buf, nil
	}
	if x.g.streamUsage {
		if i == 1 {
			x.buf = x.g.appendUsageChoices(append(b, x.prefix...))
			x.buf = append(x.buf, "\n\n"...)
			return x.buf, nil
		}
		i--
	}
	if i == 1 {
		x.buf = append(b, doneEvent...)
		return x.buf, nil
	}
	return nil, io.EOF
}

// SupportsBodyWriteTo tells fasthttp to drive the stream with WriteTo.
func (x *sseStream) SupportsBodyWriteTo() bool { return true }

// WriteTo writes the events to w one Write per event, flushing w after each if
// it can; it stops at the first write error.
func (x *sseStream) WriteTo(w io.Writer) (n int64, err error) {
	if hook := x.s.onStreamEnd; hook != nil {
		defer func() { hook(err) }()
	}
	for {
		ev, err := x.next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		m, err := writeEvent(w, ev)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
}

// writeEvent writes one event and flushes it to the socket if w can.
func writeEvent(w io.Writer, ev []byte) (int, error) {
	n, err := w.Write(ev)
	if err != nil {
		return n, err
	}
	if f, ok := w.(flusher); ok {
		err = f.Flush()
	}
	return n, err
}

// Read is the plain io.Reader form of WriteTo, for callers that do not use it.
func (x *sseStream) Read(p []byte) (int, error) {
	if len(x.pending) == 0 {
		ev, err := x.next()
		if err != nil {
			return 0, err
		}
		x.pending = ev
	}
	n := copy(p, x.pending)
	x.pending = x.pending[n:]
	return n, nil
}

// Close returns the stream to its server's pool; fasthttp calls it once the
// body is written or abandoned.
func (x *sseStream) Close() error {
	s := x.s
	if s == nil {
		return nil
	}
	x.release()
	x.s, x.g, x.pending, x.release = nil, generation{}, nil, nil
	s.streams.Put(x)
	return nil
}

// cutBody sends the headers (with the full Content-Length) and the first half
// of body, then drops the connection.
func cutBody(ctx *fasthttp.RequestCtx, body []byte) {
	half := append([]byte(nil), body[:len(body)/2]...)
	ctx.Response.ImmediateHeaderFlush = true
	ctx.SetBodyStream(&cutReader{part: half}, len(body))
}

// cutReader yields part, then fails so that the connection drops.
type cutReader struct {
	part []byte
}

// SupportsBodyWriteTo tells fasthttp to use WriteTo.
func (c *cutReader) SupportsBodyWriteTo() bool { return true }

// WriteTo writes and flushes part, then returns errDropped.
func (c *cutReader) WriteTo(w io.Writer) (int64, error) {
	m, err := w.Write(c.part)
	if err == nil {
		if f, ok := w.(flusher); ok {
			err = f.Flush()
		}
	}
	c.part = nil
	if err != nil {
		return int64(m), err
	}
	return int64(m), errDropped
}

// Read yields part, then errDropped.
func (c *cutReader) Read(p []byte) (int, error) {
	if len(c.part) == 0 {
		return 0, errDropped
	}
	n := copy(p, c.part)
	c.part = c.part[n:]
	return n, nil
}
