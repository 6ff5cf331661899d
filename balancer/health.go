package balancer

// DefaultHealthFailures is how many active health probes in a row must
// fail before an instance is taken out of rotation, unless
// WithHealthFailures says otherwise.
const DefaultHealthFailures = 3

// ReportHealth records the outcome of one active health probe of instance
// id (a background prober's, never the request path's). After the
// configured number of failures in a row (DefaultHealthFailures) the
// instance is not picked, not even in panic mode, until a probe passes
// again; both transitions are logged. An instance back in rotation whose
// breaker opened meanwhile (on the attempts that failed while it was down
// or frozen) has its breaker half-open at once: its probes decide, not the
// rest of open_timeout. It reports whether id is in the pool the balancer
// last built from. It is safe for concurrent use.
func (b *Balancer) ReportHealth(id string, ok bool) bool {
	s := b.statsOf(id)
	if s == nil {
		return false
	}
	s.probed.Store(true)
	if ok {
		s.probeFails.Store(0)
		if s.down.CompareAndSwap(true, false) {
			s.brk.endOpen()
			b.env.log.Info().Str("instance", id).Msg("instance passes its health check again: back in rotation")
		}
		return true
	}
	if n := s.probeFails.Add(1); n >= int32(b.env.healthFailures) && s.down.CompareAndSwap(false, true) {
		b.env.log.Warn().Str("instance", id).Int32("failures", n).Msg("instance fails its health check: out of rotation")
	}
	return true
}

// health is the active health state shown by Instances: "" (not probed),
// "up" or "down".
func (s *stats) health() string {
	switch {
	case s.down.Load():
		return "down"
	case s.probed.Load():
		return "up"
	}
	return ""
}

// statsOf returns the stats of instance id, nil if it is not in the pool.
func (b *Balancer) statsOf(id string) *stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats[id]
}
