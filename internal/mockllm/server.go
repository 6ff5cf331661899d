package mockllm

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// maxRequestBodySize caps request bodies; large enough for audio and file
// uploads in pass-through tests.
const maxRequestBodySize = 64 << 20

// Server is a running (or ready to run) mock model server. All its methods are
// safe for concurrent use.
type Server struct {
	srv *fasthttp.Server

	// state is the current *state; replaced as a whole by Set.
	state atomic.Pointer[state]
	// setMu serializes Set and guards rng.
	setMu sync.Mutex
	rng   *rand.Rand

	// mode mirrors modeNow for the lock-free fast path.
	mode      atomic.Int32
	modeMu    sync.Mutex
	modeNow   Mode
	modeShift chan struct{} // closed and replaced on every mode change

	requests atomic.Int64
	engine   *engine

	lastMu   sync.Mutex
	last     []byte
	haveLast bool

	bufs    sync.Pool // *[]byte scratch buffers for rendering replies
	streams sync.Pool // *sseStream

	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	serveWG   sync.WaitGroup // accept loops
	connWG    sync.WaitGroup // connection goroutines

	// onWait and onStreamEnd let tests synchronise with the server without
	// sleeping; set them before serving. onWait runs when a request starts
	// waiting in ModeHang ("hang") or for its latency ("latency"), onStreamEnd
	// when a stream body ends, with nil if it ran to [DONE].
	onWait      func(why string)
	onStreamEnd func(error)

	connMu sync.Mutex
	closed bool
	lns    []net.Listener
	conns  map[net.Conn]struct{}
}

// New returns a Server configured by cfg that is not yet serving; call Serve, or
// use Handler with a fasthttp server of your own.
func New(cfg Config) *Server {
	cfg = cfg.normalized()
	s := &Server{
		rng:       rand.New(rand.NewPCG(uint64(cfg.Seed), 0)),
		modeShift: make(chan struct{}),
		closing:   make(chan struct{}),
		conns:     make(map[net.Conn]struct{}),
	}
	s.state.Store(newState(cfg))
	s.engine = newEngine(cfg.Engine)
	s.srv = &fasthttp.Server{
		Handler: s.handle,
		Name:    "mockllm",
		Logger:  nopLogger{},
		// No Date header: fasthttp would start a process-wide goroutine
		// to keep it current, which outlives Close. (Its default
		// ErrorHandler resets this setting, hence handleBadRequest.)
		NoDefaultDate:                true,
		ErrorHandler:                 s.handleBadRequest,
		MaxRequestBodySize:           maxRequestBodySize,
		DisablePreParseMultipartForm: true,
		ReadBufferSize:               16 << 10,
	}
	return s
}

// Start listens on addr (for example "127.0.0.1:0") over TCP and serves in a
// goroutine until Close.
func Start(addr string, cfg Config) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mockllm: listen %s: %w", addr, err)
	}
	s := New(cfg)
	if err := s.register(ln); err != nil {
		_ = ln.Close()
		return nil, err
	}
	go func() { _ = s.serve(ln) }()
	return s, nil
}

// Serve serves connections from ln until Close, then returns nil; it closes ln
// when it returns. It returns ErrClosed at once on a closed Server. Serve may be
// called for several listeners.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.register(ln); err != nil {
		_ = ln.Close()
		return err
	}
	return s.serve(ln)
}

// register records ln so that Close closes it and waits for its Serve.
func (s *Server) register(ln net.Listener) error {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.lns = append(s.lns, ln)
	s.serveWG.Add(1)
	return nil
}

// serve accepts connections on a registered ln and serves each in its own
// goroutine with fasthttp's ServeConn. Owning the accept loop (rather than
// fasthttp.Server.Serve, whose worker-pool cleaner outlives it by up to ten
// seconds) lets Close wait for every goroutine the server started.
func (s *Server) serve(ln net.Listener) error {
	defer s.serveWG.Done()
	defer ln.Close()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return nil
			}
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				// Out of file descriptors and the like: retry as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				if s.pause(backoff) {
					continue
				}
				return nil
			}
			return fmt.Errorf("mockllm: accept: %w", err)
		}
		backoff = 0
		if !s.addConn(c) {
			_ = c.Close()
			continue
		}
		go s.serveConn(c)
	}
}

// addConn records c so that Close closes it and waits for it; it returns
// false once the server is closed.
func (s *Server) addConn(c net.Conn) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	return true
}

// serveConn serves the requests on c until it closes.
func (s *Server) serveConn(c net.Conn) {
	defer s.connWG.Done()
	_ = s.srv.ServeConn(c) // closes c
	s.connMu.Lock()
	delete(s.conns, c)
	s.connMu.Unlock()
}

// Addr returns the address of the first listener, such as "127.0.0.1:41234",
// or "" before Serve.
func (s *Server) Addr() string {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if len(s.lns) == 0 {
		return ""
	}
	return s.lns[0].Addr().String()
}

// Close stops serving: it closes the listeners and every open connection, ends
// waiting handlers and streams, and returns once all Serve calls and connection
// handlers have finished. It always returns nil (it satisfies io.Closer);
// later calls do nothing.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.connMu.Lock()
		s.closed = true
		close(s.closing)
		lns := s.lns
		for c := range s.conns {
			_ = c.Close()
		}
		s.connMu.Unlock()

		for _, ln := range lns {
			_ = ln.Close() // errors only say it was closed already
		}
		s.serveWG.Wait()
		s.connWG.Wait()
	})
	return nil
}

// isClosing reports whether Close has been called.
func (s *Server) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// nopLogger silences fasthttp's logging of connection errors, which fault
// modes cause on purpose.
type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
