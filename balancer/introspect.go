package balancer

import (
	"time"

	"github.com/sony/gobreaker/v2"
)

// InstanceStat is the balancer's view of one instance, for metrics and the
// admin API.
type InstanceStat struct {
	ID       string        // "GROUP@@service#host:port"
	Service  string        // pool key, "GROUP@@service"
	Addr     string        // "host:port"
	Version  string        // metadata "version"
	Weight   float64       // Nacos weight
	Usable   bool          // healthy, enabled, not draining, weight > 0
	Breaker  BreakerState  // closed, open or half-open (open past its timeout)
	InFlight int64         // picked and not yet Done
	EWMA     time.Duration // moving average of time to first token (or latency); 0 before any result
	Picks    uint64        // picks since the instance joined the pool
	Failures uint64        // results counted as failures since then
	// Engine is the load the instance's engine last reported
	// (SetEngineLoad) and EngineFresh whether it still counts; when not,
	// policies use InFlight.
	Engine      EngineLoad
	EngineFresh bool
	Health      string // active health: "" (not probed), "up" or "down" (not picked)
}

// BreakerState is the state of an instance's circuit breaker. Its values
// are the names the admin API and logs show.
type BreakerState string

// The breaker states.
const (
	BreakerClosed   BreakerState = "closed"
	BreakerOpen     BreakerState = "open"
	BreakerHalfOpen BreakerState = "half-open" // open past its timeout: probes may go
)

func breakerState(s gobreaker.State) BreakerState {
	switch s {
	case gobreaker.StateOpen:
		return BreakerOpen
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	}
	return BreakerClosed
}

// Instances returns every instance of the pool the balancer last built
// from, by service and then ID. It is safe for concurrent use and
// allocates; call it from the metrics or admin path, not per request.
func (b *Balancer) Instances() []InstanceStat {
	st := b.state.Load()
	out := make([]InstanceStat, len(st.instances))
	now := b.env.clock()
	for i, ref := range st.instances {
		in, s := ref.in, ref.st
		inflight := s.inflight.Load()
		out[i] = InstanceStat{
			ID: in.ID(), Service: in.ServiceKey(), Addr: in.Addr(), Version: in.Version,
			Weight: in.Weight, Usable: in.Usable(), Breaker: breakerState(s.brk.state()),
			InFlight: inflight, EWMA: time.Duration(s.ewma.Load()),
			Picks: s.finished.Load() + uint64(max(inflight, 0)), Failures: s.failures.Load(),
			Health: s.health(),
		}
		out[i].Engine, out[i].EngineFresh = s.engine(b.env, now)
	}
	return out
}

// PanicPicks returns how many picks for the named route were made in panic
// mode (every matching instance's breaker open). For requests that fell
// back to a service, name is the pool key "GROUP@@service". Counts last as
// long as the route or service does.
func (b *Balancer) PanicPicks(name string) uint64 {
	st := b.state.Load()
	r := st.routes[name]
	if r == nil {
		r = st.services[name]
	}
	if r == nil {
		return 0
	}
	return r.panics.Load()
}

// ServiceLoad counts the instances of a service (pool key) in the pool the
// balancer last built from: all of them, the usable ones, those whose
// breaker is open (not yet half-open), the attempts they have in flight,
// and the sum of their max_concurrency (0 when any instance states none).
// It is the degrade.Fleet the router hands its degrade.Gate. It does not
// allocate and takes no lock; it walks every instance of the pool.
func (b *Balancer) ServiceLoad(service string) (instances, usable, breakerOpen, inFlight, capacity int) {
	st := b.state.Load()
	capKnown := true
	for _, ref := range st.instances {
		in, s := ref.in, ref.st
		if in.ServiceKey() != service {
			continue
		}
		instances++
		if in.Usable() {
			usable++
		}
		if s.brk.state() == gobreaker.StateOpen {
			breakerOpen++
		}
		inFlight += int(s.inflight.Load())
		if in.MaxConcurrency <= 0 {
			capKnown = false
		}
		capacity += in.MaxConcurrency
	}
	if !capKnown {
		capacity = 0
	}
	return instances, usable, breakerOpen, inFlight, capacity
}
