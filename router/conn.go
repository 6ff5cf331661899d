package router

import (
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// watchedConn is an upstream connection whose reads can be held to a
// progress deadline: once armed, every Read must return within idle, and
// none past hard. fasthttp sets one read deadline per request (the request's
// timeout) and holds it for the whole streamed body; arming replaces it, for
// the body, with "no silence longer than first_byte_timeout, nothing past
// timeout". A new request on the connection disarms it (fasthttp sets its
// deadlines again).
//
// It is safe for concurrent use: arm runs on the handler goroutine, reads on
// the stream writer's.
type watchedConn struct {
	net.Conn
	idle atomic.Int64 // nanoseconds; 0: disarmed
	hard atomic.Int64 // unix nanoseconds; 0: none
}

func (c *watchedConn) Read(p []byte) (int, error) {
	if idle := c.idle.Load(); idle > 0 {
		d := time.Now().UnixNano() + idle
		if h := c.hard.Load(); h != 0 && h < d {
			d = h
		}
		if err := c.Conn.SetReadDeadline(time.Unix(0, d)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

func (c *watchedConn) SetReadDeadline(t time.Time) error {
	c.idle.Store(0)
	return c.Conn.SetReadDeadline(t)
}

func (c *watchedConn) SetDeadline(t time.Time) error {
	c.idle.Store(0)
	return c.Conn.SetDeadline(t)
}

// LocalAddr carries the connection along, so that the router finds it from
// the response fasthttp filled (Response.LocalAddr) once Do has returned.
func (c *watchedConn) LocalAddr() net.Addr { return watchedAddr{c.Conn.LocalAddr(), c} }

type watchedAddr struct {
	net.Addr
	c *watchedConn
}

// armReads holds the rest of resp's body to the progress deadline idle and
// the hard deadline hard. It reports false if resp did not come over a
// watched connection.
func armReads(resp *fasthttp.Response, idle time.Duration, hard time.Time) bool {
	a, ok := resp.LocalAddr().(watchedAddr)
	if !ok {
		return false
	}
	a.c.hard.Store(hard.UnixNano())
	a.c.idle.Store(int64(idle))
	return true
}
