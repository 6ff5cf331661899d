package router

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
)

// lineWriter is the access log's writer: Write copies a line into a bounded
// buffer and returns at once; its run goroutine writes the buffer out in
// batches. A line that does not fit is dropped and counted, so a slow or
// stuck output never slows a request. Write is safe for concurrent use.
type lineWriter struct {
	out     io.Writer
	max     int
	dropped atomic.Uint64

	mu     sync.Mutex
	buf    []byte
	closed bool
	wake   chan struct{}
}

// accessLogBuffer bounds the bytes of access log lines waiting to be
// written: at ~400 bytes a line, about 2,500 lines.
const accessLogBuffer = 1 << 20

func newLineWriter(out io.Writer, max int) *lineWriter {
	return &lineWriter{out: out, max: max, buf: make([]byte, 0, 64<<10), wake: make(chan struct{}, 1)}
}

// Write keeps a copy of p for the run goroutine, or drops it when the
// buffer is full or the writer is closed. It never fails.
func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed || len(w.buf)+len(p) > w.max {
		w.mu.Unlock()
		w.dropped.Add(1)
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// run writes buffered lines out until ctx is done, then writes what is
// left and closes the writer: later lines are dropped and counted.
func (w *lineWriter) run(ctx context.Context) {
	spare := make([]byte, 0, 64<<10)
	for {
		select {
		case <-w.wake:
		case <-ctx.Done():
			w.mu.Lock()
			w.closed = true
			rest := w.buf
			w.buf = nil
			w.mu.Unlock()
			_, _ = w.out.Write(rest)
			return
		}
		w.mu.Lock()
		batch := w.buf
		w.buf = spare[:0]
		w.mu.Unlock()
		_, _ = w.out.Write(batch)
		spare = batch
	}
}
