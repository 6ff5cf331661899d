package router

import (
	"crypto/tls"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/discovery"
)

// upstreams keeps one fasthttp.HostClient per instance. Lookups are
// lock-free; a miss creates the client under a lock. prune drops the clients
// of instances that left the pool.
type upstreams struct {
	mu             sync.Mutex
	clients        atomic.Pointer[map[string]*fasthttp.HostClient]
	connectTimeout time.Duration
	tlsConfig      *tls.Config
	dialer         func(addr string) (net.Conn, error) // nil: TCP
	maxConns       int
}

func newUpstreams(connectTimeout time.Duration, maxConns int, tlsConfig *tls.Config) *upstreams {
	u := &upstreams{connectTimeout: connectTimeout, maxConns: maxConns, tlsConfig: tlsConfig}
	u.clients.Store(&map[string]*fasthttp.HostClient{})
	return u
}

func clientKey(in *discovery.Instance) string {
	if in.Scheme == "https" {
		return in.ID() + "|tls"
	}
	return in.ID()
}

// get returns the client for in, creating it on first use.
func (u *upstreams) get(in *discovery.Instance) *fasthttp.HostClient {
	key := clientKey(in)
	if hc, ok := (*u.clients.Load())[key]; ok {
		return hc
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	cur := *u.clients.Load()
	if hc, ok := cur[key]; ok {
		return hc
	}
	hc := &fasthttp.HostClient{
		Addr:                in.Addr(),
		Name:                "modelgate",
		IsTLS:               in.Scheme == "https",
		TLSConfig:           u.tlsConfig,
		DialTimeout:         u.dial,
		MaxIdleConnDuration: 30 * time.Second,
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
	next := maps.Clone(cur)
	next[key] = hc
	u.clients.Store(&next)
	return hc
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
	next := make(map[string]*fasthttp.HostClient, len(live))
	for k, hc := range cur {
		if live[k] {
			next[k] = hc
		} else {
			hc.CloseIdleConnections()
		}
	}
	u.clients.Store(&next)
}
