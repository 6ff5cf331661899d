package mockllm

import (
	"math/rand/v2"
	"time"
)

// Requests returns the number of requests received on the model endpoints
// (chat, completions, embeddings), counted on arrival whatever their outcome.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Config returns the current configuration, defaults filled in.
func (s *Server) Config() Config { return s.state.Load().cfg }

// Set changes the configuration: mutate receives a copy of the current one
// (defaults filled in), and the result applies to requests that arrive
// afterwards and to requests still waiting in ModeHang; requests and streams
// already under way keep the configuration they started with. A changed Seed
// reseeds the random source.
func (s *Server) Set(mutate func(*Config)) {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	old := s.state.Load().cfg
	cfg := old
	mutate(&cfg)
	cfg = cfg.normalized()
	if cfg.Seed != old.Seed {
		s.rng = rand.New(rand.NewPCG(uint64(cfg.Seed), 0))
	}
	s.state.Store(newState(cfg))
}

// SetMode switches the connection-level fault mode; requests hanging in ModeHang
// then proceed under the new mode.
func (s *Server) SetMode(m Mode) {
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	s.modeNow = m
	s.mode.Store(int32(m))
	close(s.modeShift)
	s.modeShift = make(chan struct{})
}

// Mode returns the current fault mode.
func (s *Server) Mode() Mode { return Mode(s.mode.Load()) }

// LastRequest returns a copy of the body of the last request received on any
// path but /v1/models and /health, or nil if there was none.
func (s *Server) LastRequest() []byte {
	s.lastMu.Lock()
	defer s.lastMu.Unlock()
	if !s.haveLast {
		return nil
	}
	return append([]byte{}, s.last...)
}

// recordRequest keeps a copy of body for LastRequest.
func (s *Server) recordRequest(body []byte) {
	s.lastMu.Lock()
	s.last = append(s.last[:0], body...)
	s.haveLast = true
	s.lastMu.Unlock()
}

// awaitMode returns the mode a request proceeds under, waiting while the mode
// is ModeHang; ok is false if the server closed meanwhile.
func (s *Server) awaitMode() (m Mode, ok bool) {
	if m = Mode(s.mode.Load()); m != ModeHang {
		return m, true
	}
	hooked := false
	for {
		s.modeMu.Lock()
		m, shift := s.modeNow, s.modeShift
		s.modeMu.Unlock()
		if m != ModeHang {
			return m, true
		}
		if !hooked && s.onWait != nil {
			hooked = true
			s.onWait("hang")
		}
		select {
		case <-shift:
		case <-s.closing:
			return m, false
		}
	}
}

// await waits out a request's latency d, returning false early if the server
// closes.
func (s *Server) await(d time.Duration) bool {
	if s.onWait != nil {
		s.onWait("latency")
	}
	return s.pause(d)
}

// pause waits d, returning false early if the server closes.
func (s *Server) pause(d time.Duration) bool {
	if d <= 0 {
		return !s.isClosing()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.closing:
		return false
	}
}

// draw decides, from the seeded source, whether a request fails and how much
// jitter it gets.
func (s *Server) draw(cfg *Config) (fail bool, jitter time.Duration) {
	if cfg.FailRate <= 0 && cfg.Jitter <= 0 {
		return false, 0
	}
	s.setMu.Lock()
	defer s.setMu.Unlock()
	if cfg.FailRate > 0 {
		fail = s.rng.Float64() < cfg.FailRate
	}
	if cfg.Jitter > 0 {
		jitter = time.Duration(s.rng.Int64N(int64(cfg.Jitter)))
	}
	return fail, jitter
}

// getBuf returns a scratch buffer for rendering; return it with putBuf.
func (s *Server) getBuf() *[]byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 2048)
	return &b
}

// putBuf returns a scratch buffer taken with getBuf.
func (s *Server) putBuf(b *[]byte) {
	*b = (*b)[:0]
	s.bufs.Put(b)
}
