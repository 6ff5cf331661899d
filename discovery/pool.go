package discovery

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Service is the immutable instance list of one service at one pool version.
type Service struct {
	Key       string      // "GROUP@@service"
	Instances []*Instance // sorted by ID
	Updated   time.Time   // when this list was applied
}

// Snapshot is the whole pool at one version. It is immutable: readers may
// keep it as long as they like.
type Snapshot struct {
	Version  uint64
	services map[string]*Service
	changed  chan struct{}
}

// Service returns the named service ("GROUP@@service"), or nil.
func (s *Snapshot) Service(key string) *Service { return s.services[key] }

// Services returns every service, sorted by key.
func (s *Snapshot) Services() []*Service {
	out := slices.Collect(maps.Values(s.services))
	slices.SortFunc(out, func(a, b *Service) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// ServiceLoad counts the instances of a service (pool key) in the current
// snapshot: all of them, the usable ones, and the sum of their
// max_concurrency (0 when any instance states none). A pool knows no
// breakers or requests in flight, so those are 0. It lets a pool serve as
// a degrade.Fleet where no balancer tracks them.
func (p *Pool) ServiceLoad(service string) (instances, usable, breakerOpen, inFlight, capacity int) {
	svc := p.Snapshot().Service(service)
	if svc == nil {
		return 0, 0, 0, 0, 0
	}
	for _, in := range svc.Instances {
		if in.Usable() {
			usable++
		}
		if capacity >= 0 && in.MaxConcurrency > 0 {
			capacity += in.MaxConcurrency
		} else {
			capacity = -1
		}
	}
	return len(svc.Instances), usable, 0, 0, max(capacity, 0)
}

// Changed returns a channel that is closed when a newer snapshot replaces s.
func (s *Snapshot) Changed() <-chan struct{} { return s.changed }

// Diff says what one update changed.
type Diff struct {
	Added, Removed, Changed []*Instance
}

// Empty reports whether the update changed nothing.
func (d Diff) Empty() bool { return len(d.Added)+len(d.Removed)+len(d.Changed) == 0 }

// Pool is the live set of instances, per service. Reads are lock-free;
// updates are serialised and each one that changes something publishes a
// new Snapshot. The zero value is not usable: call NewPool.
type Pool struct {
	mu     sync.Mutex // serialises writers
	state  atomic.Pointer[Snapshot]
	log    zerolog.Logger
	now    func() time.Time
	synced chan struct{}
	once   sync.Once
	stale  atomic.Bool
}

// Option configures a Pool.
type Option func(*Pool)

// WithLogger sets the logger for pool changes (default: none).
func WithLogger(l zerolog.Logger) Option { return func(p *Pool) { p.log = l } }

// WithClock sets the clock used for Service.Updated (default time.Now).
func WithClock(now func() time.Time) Option { return func(p *Pool) { p.now = now } }

// NewPool returns an empty pool at version 0.
func NewPool(opts ...Option) *Pool {
	p := &Pool{log: zerolog.Nop(), now: time.Now, synced: make(chan struct{})}
	for _, o := range opts {
		o(p)
	}
	p.state.Store(&Snapshot{services: map[string]*Service{}, changed: make(chan struct{})})
	return p
}

// Snapshot returns the current snapshot. It never blocks.
func (p *Pool) Snapshot() *Snapshot { return p.state.Load() }

// Update replaces the instance list of service key with instances, parsing
// each one. Instances of other services in the list are ignored. An empty
// list keeps the service known with no instances; use Remove to forget it.
// Update publishes a new snapshot only if something changed, and returns
// what did.
func (p *Pool) Update(key string, instances []*Instance) Diff {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.state.Load()
	old := cur.services[key]

	next := make([]*Instance, 0, len(instances))
	seen := make(map[string]bool, len(instances))
	for _, in := range instances {
		errs := in.Parse()
		if in.ServiceKey() != key || seen[in.ID()] {
			continue
		}
		seen[in.ID()] = true
		next = append(next, in)
		if prev := old.find(in.ID()); prev == nil || !prev.equal(in) {
			for _, err := range errs { // once per instance change, not per update
				p.log.Warn().Err(err).Msg("bad instance metadata, using defaults")
			}
		}
	}
	slices.SortFunc(next, func(a, b *Instance) int { return cmp.Compare(a.ID(), b.ID()) })

	var d Diff
	for i, in := range next {
		switch prev := old.find(in.ID()); {
		case prev == nil:
			d.Added = append(d.Added, in)
		case !prev.equal(in):
			d.Changed = append(d.Changed, in)
		default:
			// Keep the published pointer so readers see one identity.
			next[i] = prev
		}
	}
	if old != nil {
		for _, in := range old.Instances {
			if !seen[in.ID()] {
				d.Removed = append(d.Removed, in)
			}
		}
	}
	if d.Empty() && old != nil {
		return d
	}
	p.publish(cur, key, &Service{Key: key, Instances: next, Updated: p.now()})
	p.logDiff(key, d)
	return d
}

// Remove forgets service key and all its instances.
func (p *Pool) Remove(key string) Diff {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.state.Load()
	old, ok := cur.services[key]
	if !ok {
		return Diff{}
	}
	p.publish(cur, key, nil)
	d := Diff{Removed: old.Instances}
	p.logDiff(key, d)
	return d
}

// publish installs a snapshot in which key maps to svc (nil removes it).
// The caller holds p.mu.
func (p *Pool) publish(cur *Snapshot, key string, svc *Service) {
	services := maps.Clone(cur.services)
	if svc == nil {
		delete(services, key)
	} else {
		services[key] = svc
	}
	p.state.Store(&Snapshot{Version: cur.Version + 1, services: services, changed: make(chan struct{})})
	close(cur.changed)
}

func (p *Pool) logDiff(key string, d Diff) {
	ids := func(list []*Instance) []string {
		out := make([]string, len(list))
		for i, in := range list {
			out[i] = in.Addr()
		}
		return out
	}
	p.log.Info().Str("service", key).Strs("added", ids(d.Added)).Strs("removed", ids(d.Removed)).
		Strs("changed", ids(d.Changed)).Msg("pool changed")
}

// MarkSynced records that the source has delivered its first complete view.
// It is safe to call more than once.
func (p *Pool) MarkSynced() { p.once.Do(func() { close(p.synced) }) }

// SetStale records whether the pool holds a view its source has not
// confirmed, such as a snapshot loaded from disk while the source cannot
// be reached. It is safe for concurrent use.
func (p *Pool) SetStale(stale bool) { p.stale.Store(stale) }

// Stale reports what SetStale last recorded; false at first.
func (p *Pool) Stale() bool { return p.stale.Load() }

// Synced is closed once MarkSynced has been called.
func (p *Pool) Synced() <-chan struct{} { return p.synced }

// WaitChange blocks until the pool is past version v or ctx is done, and
// returns the newest snapshot.
func (p *Pool) WaitChange(ctx context.Context, v uint64) (*Snapshot, error) {
	for {
		s := p.Snapshot()
		if s.Version > v {
			return s, nil
		}
		select {
		case <-s.Changed():
		case <-ctx.Done():
			return p.Snapshot(), ctx.Err()
		}
	}
}

func (s *Service) find(id string) *Instance {
	if s == nil {
		return nil
	}
	i, ok := slices.BinarySearchFunc(s.Instances, id, func(in *Instance, id string) int { return cmp.Compare(in.ID(), id) })
	if !ok {
		return nil
	}
	return s.Instances[i]
}

// Source feeds a Pool. Run delivers full instance lists until ctx is done,
// calls pool.MarkSynced once its first complete view is in, and returns
// ctx's error on shutdown.
type Source interface {
	Run(ctx context.Context, pool *Pool) error
}
