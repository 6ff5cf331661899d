package router

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"
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
// left and closes the writer: later lines are dropped and counted. After a
// write it lets accessLogFlushEvery pass before the next, so that under load
// one write carries many lines (one write per request would cost a system
// call per request); lines reach the output at most that late.
func (w *lineWriter) run(ctx context.Context) {
	spare := make([]byte, 0, 64<<10)
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		select {
		case <-pause.C:
		case <-ctx.Done():
			w.closeAndFlush()
			return
		}
		select {
		case <-w.wake:
		case <-ctx.Done():
			w.closeAndFlush()
			return
		}
		w.mu.Lock()
		batch := w.buf
		w.buf = spare[:0]
		w.mu.Unlock()
		_, _ = w.out.Write(batch)
		spare = batch
		pause.Reset(accessLogFlushEvery)
	}
}

// accessLogFlushEvery is the least time between two writes of the access
// log: at most this late a line is written, and at most 1/this writes a
// second are made.
const accessLogFlushEvery = 50 * time.Millisecond

func (w *lineWriter) closeAndFlush() {
	w.mu.Lock()
	w.closed = true
	rest := w.buf
	w.buf = nil
	w.mu.Unlock()
	_, _ = w.out.Write(rest)
}
