package nacos

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/rs/zerolog"

	"github.com/modelgate/modelgate/discovery"
)

// EmptyPolicy says what to do when Nacos reports that a service which had
// instances now has none, or that the service itself is gone.
type EmptyPolicy string

const (
	// EmptyKeep keeps serving the last good list for the grace period, then
	// applies the empty list. A Nacos restart or a bad push does not empty
	// the pool. The default.
	EmptyKeep EmptyPolicy = "keep"
	// EmptyApply empties the service at once.
	EmptyApply EmptyPolicy = "apply"
)

// Options configure a Watcher. Zero values take the documented defaults.
type Options struct {
	Groups            []string      // groups to watch; default [discovery.DefaultGroup]
	ListInterval      time.Duration // how often services are listed; default 10s
	ReconcileInterval time.Duration // how often each service is re-read; default 3s
	Empty             EmptyPolicy   // default EmptyKeep
	EmptyGrace        time.Duration // how long EmptyKeep keeps a list; default 30s
	Logger            *zerolog.Logger
	// Metrics receives the watcher's metrics; default none.
	Metrics *metrics.Set
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (o *Options) normalize() error {
	if len(o.Groups) == 0 {
		o.Groups = []string{discovery.DefaultGroup}
	}
	if o.ListInterval <= 0 {
		o.ListInterval = 10 * time.Second
	}
	if o.ReconcileInterval <= 0 {
		o.ReconcileInterval = 3 * time.Second
	}
	switch o.Empty {
	case "":
		o.Empty = EmptyKeep
	case EmptyKeep, EmptyApply:
	default:
		return fmt.Errorf("nacos: empty policy %q: want keep or apply", o.Empty)
	}
	if o.EmptyGrace <= 0 {
		o.EmptyGrace = 30 * time.Second
	}
	if o.Logger == nil {
		nop := zerolog.Nop()
		o.Logger = &nop
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Watcher is a discovery.Source over Nacos.
type Watcher struct {
	client Client
	opts   Options

	mu    sync.Mutex
	svcs  map[string]*watched // by "GROUP@@service"; guarded by mu
	dirty map[string]bool     // services Nacos said changed, not yet read; guarded by mu
	wake  chan struct{}       // has a value when dirty may be non-empty

	lastSync atomic.Int64 // unix nanos of the last complete listing
	pushes   *metrics.Counter
	recons   *metrics.Counter
	pool     *discovery.Pool
}

// watched is the state of one subscribed service.
type watched struct {
	group, name string
	emptySince  time.Time // when an empty list was first held back; zero if none
	missing     bool      // not in the last listing
}

var _ discovery.Source = (*Watcher)(nil)

// NewWatcher returns a Watcher over client. It does nothing until Run.
func NewWatcher(client Client, opts Options) (*Watcher, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	w := &Watcher{client: client, opts: opts, svcs: map[string]*watched{}, dirty: map[string]bool{},
		wake: make(chan struct{}, 1)}
	if s := opts.Metrics; s != nil {
		w.pushes = s.NewCounter(`modelgate_nacos_updates_total{source="push"}`)
		w.recons = s.NewCounter(`modelgate_nacos_updates_total{source="reconcile"}`)
		s.NewGauge(`modelgate_nacos_sync_age_seconds`, func() float64 {
			last := w.lastSync.Load()
			if last == 0 {
				return -1
			}
			return opts.Now().Sub(time.Unix(0, last)).Seconds()
		})
		s.NewGauge(`modelgate_nacos_held_services`, func() float64 { return float64(w.held()) })
	}
	return w, nil
}

// Run implements discovery.Source. It returns when ctx is done, after
// unsubscribing from every service.
func (w *Watcher) Run(ctx context.Context, pool *discovery.Pool) error {
	w.pool = pool
	defer w.unsubscribeAll()

	list := time.NewTicker(w.opts.ListInterval)
	defer list.Stop()
	recon := time.NewTicker(w.opts.ReconcileInterval)
	defer recon.Stop()

	synced := w.list()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-list.C:
			synced = w.list() || synced
		case <-recon.C:
			if !synced { // retry the first listing quickly
				synced = w.list()
			}
			w.reconcile()
		case <-w.wake:
			w.fetchChanged()
		}
	}
}

// changed records that Nacos pushed a change of key. It runs on the SDK's
// goroutine and returns at once; the read happens on the Run goroutine.
func (w *Watcher) changed(key string) {
	w.mu.Lock()
	w.dirty[key] = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// fetchChanged reads and applies every service Nacos said changed.
func (w *Watcher) fetchChanged() {
	w.mu.Lock()
	var todo [][3]string
	for key := range w.dirty {
		if s, ok := w.svcs[key]; ok {
			todo = append(todo, [3]string{key, s.group, s.name})
		}
	}
	clear(w.dirty)
	w.mu.Unlock()
	for _, k := range todo {
		list, err := w.client.Instances(k[1], k[2])
		if err != nil {
			w.opts.Logger.Warn().Err(err).Str("service", k[0]).Msg("nacos read after a push failed, the reconcile will retry")
			continue
		}
		w.apply(k[0], list, w.pushes)
	}
}

// list lists every group, subscribes to new services and retires vanished
// ones. It reports whether the listing was complete; an incomplete one
// changes nothing.
func (w *Watcher) list() bool {
	found := map[string][2]string{}
	for _, g := range w.opts.Groups {
		names, err := w.client.ListServices(g)
		if err != nil {
			w.opts.Logger.Warn().Err(err).Msg("nacos listing failed, keeping the last known pool")
			return false
		}
		for _, n := range names {
			found[discovery.ServiceKey(g, n)] = [2]string{g, n}
		}
	}
	for key, gn := range found {
		w.mu.Lock()
		s, ok := w.svcs[key]
		if ok {
			s.missing = false
		} else {
			w.svcs[key] = &watched{group: gn[0], name: gn[1]}
		}
		w.mu.Unlock()
		if ok {
			continue
		}
		// The SDK may call back inside Subscribe: hold no lock here.
		if err := w.client.Subscribe(gn[0], gn[1], func() { w.changed(key) }); err != nil {
			w.opts.Logger.Warn().Err(err).Str("service", key).Msg("nacos subscribe failed, will retry")
			w.mu.Lock()
			delete(w.svcs, key)
			w.mu.Unlock()
			continue
		}
		w.changed(key) // read it now, whether or not the SDK called back
		w.opts.Logger.Info().Str("service", key).Msg("subscribed")
	}
	w.mu.Lock()
	for key, s := range w.svcs {
		if _, ok := found[key]; !ok {
			s.missing = true
		}
	}
	w.mu.Unlock()
	w.retireMissing()
	w.fetchChanged() // read the new services before saying the pool is synced
	w.lastSync.Store(w.opts.Now().UnixNano())
	w.pool.MarkSynced()
	return true
}

// reconcile re-reads every subscribed service and applies what changed,
// for pushes that were lost.
func (w *Watcher) reconcile() {
	w.mu.Lock()
	keys := make([][3]string, 0, len(w.svcs))
	for key, s := range w.svcs {
		if !s.missing {
			keys = append(keys, [3]string{key, s.group, s.name})
		}
	}
	w.mu.Unlock()
	for _, k := range keys {
		list, err := w.client.Instances(k[1], k[2])
		if err != nil {
			w.opts.Logger.Debug().Err(err).Str("service", k[0]).Msg("nacos reconcile failed")
			continue
		}
		w.apply(k[0], list, w.recons)
	}
	w.retireMissing()
}

// apply hands a full instance list to the pool, holding back an empty list
// under EmptyKeep until the grace period has passed.
func (w *Watcher) apply(key string, list []model.Instance, counter *metrics.Counter) {
	w.mu.Lock()
	s, ok := w.svcs[key]
	if !ok { // a late callback for a service already retired
		w.mu.Unlock()
		return
	}
	if len(list) == 0 && w.hold(key, s) {
		w.mu.Unlock()
		return
	}
	if len(list) > 0 {
		s.emptySince = time.Time{}
	}
	group, name := s.group, s.name
	w.mu.Unlock()

	instances := make([]*discovery.Instance, 0, len(list))
	for _, in := range list {
		instances = append(instances, &discovery.Instance{
			Service: name, Group: group, Cluster: in.ClusterName,
			Host: in.Ip, Port: int(in.Port), Weight: in.Weight,
			Healthy: in.Healthy, Enabled: in.Enable, Metadata: in.Metadata,
		})
	}
	if d := w.pool.Update(key, instances); !d.Empty() && counter != nil {
		counter.Inc()
	}
}

// hold reports whether an empty list for s must be held back now. The
// caller holds w.mu.
func (w *Watcher) hold(key string, s *watched) bool {
	if w.opts.Empty == EmptyApply {
		return false
	}
	if svc := w.pool.Snapshot().Service(key); svc == nil || len(svc.Instances) == 0 {
		return false // nothing to keep
	}
	now := w.opts.Now()
	if s.emptySince.IsZero() {
		s.emptySince = now
		w.opts.Logger.Warn().Str("service", key).Dur("grace", w.opts.EmptyGrace).
			Msg("nacos reports no instances, keeping the last good list")
	}
	return now.Sub(s.emptySince) < w.opts.EmptyGrace
}

// retireMissing unsubscribes and removes services that vanished from the
// listing, once the empty policy lets them go.
func (w *Watcher) retireMissing() {
	var gone []*watched
	w.mu.Lock()
	for key, s := range w.svcs {
		if s.missing && !w.hold(key, s) {
			gone = append(gone, s)
			delete(w.svcs, key)
		}
	}
	w.mu.Unlock()
	for _, s := range gone {
		key := discovery.ServiceKey(s.group, s.name)
		if err := w.client.Unsubscribe(s.group, s.name); err != nil {
			w.opts.Logger.Warn().Err(err).Str("service", key).Msg("nacos unsubscribe failed")
		}
		w.pool.Remove(key)
		w.opts.Logger.Info().Str("service", key).Msg("service gone, unsubscribed")
	}
}

func (w *Watcher) held() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, s := range w.svcs {
		if !s.emptySince.IsZero() {
			n++
		}
	}
	return n
}

func (w *Watcher) unsubscribeAll() {
	w.mu.Lock()
	all := slices.Collect(maps.Values(w.svcs))
	clear(w.svcs)
	w.mu.Unlock()
	for _, s := range all {
		_ = w.client.Unsubscribe(s.group, s.name)
	}
}
