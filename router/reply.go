package router

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/internal/sse"
)

// errReplyTooLarge fails an attempt whose reply exceeds max_reply_size.
var errReplyTooLarge = errors.New("router: reply larger than max_reply_size")

// readWhole reads the complete upstream reply resp into the client's
// response: status, headers and body, decoded if the instance compressed it
// although asked not to. A body that would exceed max bytes (raw or
// decoded) is not read further and fails with errReplyTooLarge. On error the
// client's response is left as it was, so another attempt may fill it.
// copyBuf is readWhole's copy buffer and limit: io.Copy would allocate
// 32 KB for every reply.
type copyBuf struct {
	lr  io.LimitedReader
	buf [16 << 10]byte
}

var copyBufs = sync.Pool{New: func() any { return new(copyBuf) }}

func readWhole(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, max int) error {
	out := &ctx.Response
	out.ResetBody()
	if resp.Header.ContentLength() > max {
		return fmt.Errorf("%w (%d bytes, Content-Length %d)", errReplyTooLarge, max, resp.Header.ContentLength())
	}
	if bs := resp.BodyStream(); bs != nil {
		cb := copyBufs.Get().(*copyBuf)
		cb.lr = io.LimitedReader{R: bs, N: int64(max) + 1}
		n, err := io.CopyBuffer(out.BodyWriter(), &cb.lr, cb.buf[:])
		cb.lr.R = nil
		copyBufs.Put(cb)
		switch {
		case err != nil:
			out.ResetBody()
			return fmt.Errorf("router: reading the reply: %w", err)
		case n > int64(max):
			out.ResetBody()
			return fmt.Errorf("%w (%d bytes)", errReplyTooLarge, max)
		}
	} else {
		out.SetBody(resp.Body())
	}
	enc := resp.Header.ContentEncoding()
	decoded := len(enc) > 0 && !bytes.EqualFold(enc, []byte("identity"))
	if decoded {
		out.Header.SetContentEncodingBytes(enc)
		body, err := out.BodyUncompressedWithLimit(max)
		out.Header.Del(fasthttp.HeaderContentEncoding)
		if err != nil {
			out.ResetBody()
			if errors.Is(err, fasthttp.ErrBodyTooLarge) {
				return fmt.Errorf("%w (%d bytes, decoded)", errReplyTooLarge, max)
			}
			return fmt.Errorf("router: decoding a %s reply: %w", enc, err)
		}
		out.SetBodyRaw(body)
	}
	ctx.SetStatusCode(resp.StatusCode())
	copyHeaders(&out.Header, &resp.Header)
	if decoded {
		out.Header.Del(fasthttp.HeaderContentEncoding)
	}
	return nil
}

func isEventStream(resp *fasthttp.Response) bool {
	return bytes.HasPrefix(resp.Header.ContentType(), []byte("text/event-stream"))
}

// events is an upstream SSE stream whose first event has been read already
// (before anything was sent to the client, so that a silent instance can
// still be retried).
type events struct {
	rd         *sse.Reader
	raw, data  []byte
	held       bool
	compressed bool // the stream was gzip-encoded and is decoded here
}

// openEvents starts reading resp's SSE body and reads its first event.
func openEvents(resp *fasthttp.Response) (*events, error) {
	body := resp.BodyStream()
	ev := &events{}
	switch enc := resp.Header.ContentEncoding(); {
	case len(enc) == 0 || bytes.EqualFold(enc, []byte("identity")):
	case bytes.EqualFold(enc, []byte("gzip")):
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, fmt.Errorf("router: reading a gzip stream: %w", err)
		}
		body, ev.compressed = zr, true
	default:
		return nil, fmt.Errorf("router: a stream in %s encoding", enc)
	}
	ev.rd = sse.NewReader(body, 0)
	raw, data, err := ev.rd.Next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("router: before the first event: %w", err)
	}
	ev.raw, ev.data, ev.held = raw, data, true
	return ev, nil
}

// next returns the held first event, then the following ones; see
// sse.Reader.Next.
func (e *events) next() (raw, data []byte, err error) {
	if e.held {
		e.held = false
		return e.raw, e.data, nil
	}
	return e.rd.Next()
}
