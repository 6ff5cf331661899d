package router

import (
	"crypto/tls"
	"errors"
	"io"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/discovery"
)

// upstreams keeps one fasthttp.HostClient per instance (and idle timeout).
// Lookups are lock-free; a miss creates the client under a lock. prune drops
// the clients of instances that left the pool.
type upstreams struct {
	mu             sync.Mutex
	clients        atomic.Pointer[map[clientID]*upstreamClient]
	connectTimeout time.Duration
	tlsConfig      *tls.Config
	dialer         func(addr string) (net.Conn, error) // nil: TCP
	maxConns       int
	// onReconnect is called when a request is sent again on a fresh
	// connection because its pooled one was closed by the instance.
	onReconnect func(in *discovery.Instance)
}

// clientID names one client: an instance, an idle timeout and a TLS
// configuration.
type clientID struct {
	base string
	idle time.Duration
	tls  *tls.Config
}

type upstreamClient struct {
	*fasthttp.HostClient
	base string // clientKey of the instance, for prune
}

func newUpstreams(connectTimeout time.Duration, maxConns int, tlsConfig *tls.Config) *upstreams {
	u := &upstreams{connectTimeout: connectTimeout, maxConns: maxConns, tlsConfig: tlsConfig}
	u.clients.Store(&map[clientID]*upstreamClient{})
	return u
}

func clientKey(in *discovery.Instance) string {
	if in.Scheme == "https" {
		return in.ID() + "|tls"
	}
	return in.ID()
}

// get returns the client for in, creating it on first use. Its idle
// connections are closed after idle, or after the instance's own
// idle_timeout when its metadata sets one: before the server closes them
// (uvicorn, under vLLM, SGLang and LiteLLM, closes idle connections after
// 5 s), so that a request is not sent on a connection the server is closing.
//
// tlsc verifies an https instance; nil means the router's default. A client
// is kept per configuration, so that a reload with another CA takes effect.
func (u *upstreams) get(in *discovery.Instance, idle time.Duration, tlsc *tls.Config) *fasthttp.HostClient {
	if in.IdleTimeout > 0 {
		idle = in.IdleTimeout
	}
	if idle <= 0 {
		idle = defaultIdleTimeout
	}
	base := clientKey(in)
	if in.Scheme != "https" {
		tlsc = nil
	} else if tlsc == nil {
		tlsc = u.tlsConfig
	}
	key := clientID{base, idle, tlsc}
	if uc, ok := (*u.clients.Load())[key]; ok {
		return uc.HostClient
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	cur := *u.clients.Load()
	if uc, ok := cur[key]; ok {
		return uc.HostClient
	}
	hc := &fasthttp.HostClient{
		Addr:                in.Addr(),
		Name:                "modelgate",
		IsTLS:               in.Scheme == "https",
		TLSConfig:           tlsc,
		DialTimeout:         u.dial,
		MaxIdleConnDuration: idle,
		// One connection per request in flight, streams included: allow
		// as many as the instance has in flight (fasthttp's default 512
		// would fail the 513th concurrent stream at once).
		MaxConns:                      u.maxConns,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
		// No ReadTimeout or WriteTimeout: they would cap whole streams.
		// Each request carries its own deadline.
	}
	// A pooled connection the instance closed anyway (its keep-alive was
	// shorter, it restarted, a middlebox dropped it) fails the request
	// before any reply byte. Send it once more on a fresh connection,
	// within the same attempt: it is not the instance failing, so neither
	// the breaker nor the route's retries see it. The rest of the pool is
	// likely as stale, so it is closed first, which also makes the next
	// connection a new one.
	hc.RetryIfErr = func(_ *fasthttp.Request, attempts int, err error) (bool, bool) {
		if attempts != 1 || !closedBeforeReply(err) {
			return false, false
		}
		hc.CloseIdleConnections()
		if u.onReconnect != nil {
			u.onReconnect(in)
		}
		return false, true
	}
	next := maps.Clone(cur)
	next[key] = &upstreamClient{HostClient: hc, base: base}
	u.clients.Store(&next)
	return hc
}

// closedBeforeReply reports whether err says the connection was closed
// before the first byte of the reply: fasthttp reports any error on the
// first byte of the reply headers as io.EOF (a reset included); writing the
// request on a connection the peer closed fails with EPIPE or ECONNRESET.
func closedBeforeReply(err error) bool {
	return err == io.EOF || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// dial connects to addr and watches the connection's reads (watchedConn).
func (u *upstreams) dial(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := u.dialRaw(addr, timeout)
	if err != nil {
		return nil, err
	}
	return &watchedConn{Conn: c}, nil
}

func (u *upstreams) dialRaw(addr string, timeout time.Duration) (net.Conn, error) {
	if u.dialer != nil {
		return u.dialer(addr)
	}
	if timeout <= 0 || timeout > u.connectTimeout {
		timeout = u.connectTimeout
	}
	return fasthttp.DialTimeout(addr, timeout)
}

// prune closes and forgets the clients of instances not in snap.
func (u *upstreams) prune(snap *discovery.Snapshot) {
	live := map[string]bool{}
	for _, svc := range snap.Services() {
		for _, in := range svc.Instances {
			live[clientKey(in)] = true
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	cur := *u.clients.Load()
	next := make(map[clientID]*upstreamClient, len(live))
	for k, uc := range cur {
		if live[uc.base] {
			next[k] = uc
		} else {
			uc.CloseIdleConnections()
		}
	}
	u.clients.Store(&next)
}
