package router

import (
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// blockingBody is a body stream whose first Close, the cut's, signals that
// it has begun and then waits to be let go.
type blockingBody struct {
	closes  atomic.Int32
	entered chan struct{}
	unblock chan struct{}
}

func (b *blockingBody) Read([]byte) (int, error) { return 0, io.EOF }
func (b *blockingBody) Close() error {
	if b.closes.Add(1) == 1 {
		close(b.entered)
		<-b.unblock
	}
	return nil
}

// TestCutterTimerPathRace forces the timer path: the cut fires and is still
// inside CloseBodyStream when the stream's owner stops it and releases the
// response (a first event arriving at its deadline). stop must wait for the
// callback; with a bare Timer.Stop the release races the callback (-race
// reports it).
func TestCutterTimerPathRace(t *testing.T) {
	body := &blockingBody{entered: make(chan struct{}), unblock: make(chan struct{})}
	resp := fasthttp.AcquireResponse()
	resp.SetBodyStream(body, -1)
	c := cutAfter(0, resp)
	<-body.entered // the callback is running

	released := make(chan struct{})
	go func() {
		c.stop()
		fasthttp.ReleaseResponse(resp)
		close(released)
	}()
	select {
	case <-released:
		t.Fatal("the response was released while the cut's callback was still closing its stream")
	case <-time.After(50 * time.Millisecond):
	}
	close(body.unblock)
	<-released
	if n := body.closes.Load(); n != 1 { // the cut's; the release finds no stream left
		t.Fatalf("stream closed %d times, want 1", n)
	}
}

// TestCutterStopped shows that a callback that runs after stop (a timer
// that had fired but whose callback had not yet got the lock) leaves the
// response alone.
func TestCutterStopped(t *testing.T) {
	body := &blockingBody{entered: make(chan struct{}), unblock: make(chan struct{})}
	close(body.unblock)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	resp.SetBodyStream(body, -1)
	c := cutAfter(time.Hour, resp)
	c.stop()
	c.fire() // a late callback
	if n := body.closes.Load(); n != 0 {
		t.Fatalf("a stopped cut closed the stream %d times", n)
	}
	c2 := cutAfter(time.Hour, resp)
	c2.fire()
	if n := body.closes.Load(); n != 1 {
		t.Fatalf("a live cut closed the stream %d times, want 1", n)
	}
	c2.stop()
}
