package nacos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
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

// Settings tune a Watcher. Zero values take the documented defaults.
type Settings struct {
	Groups []string // groups to watch; default [discovery.DefaultGroup]
	// ListInterval is how often the groups are listed for new and vanished
	// services (one call per group and 1,000 services), jittered by ±10%;
	// default 1.5s.
	ListInterval time.Duration
	// ReconcileInterval is the shortest time between two re-reads of one
	// service by the backstop for lost pushes; default 60s.
	ReconcileInterval time.Duration
	// ReconcileRate caps the backstop's reads per second, so its load on
	// Nacos does not grow with the number of services: with n services
	// each is re-read every max(ReconcileInterval, n/ReconcileRate), the
	// reads spread evenly and jittered. Default 1.
	ReconcileRate float64
	Empty         EmptyPolicy   // default EmptyKeep
	EmptyGrace    time.Duration // how long EmptyKeep keeps a list; default 30s
	// SnapshotPath, when set, is a file the pool is written to (atomically,
	// at most once per SnapshotEvery, only views confirmed by Nacos) and
	// read from at start when Nacos cannot be reached.
	SnapshotPath  string
	SnapshotEvery time.Duration // default 1s
}

// Option sets an optional dependency of a Watcher.
type Option func(*Watcher)

// WithLogger sets the logger of pool changes, subscriptions and Nacos
// failures (default: none).
func WithLogger(l zerolog.Logger) Option { return func(w *Watcher) { w.log = l } }

// WithMetrics sets where the watcher's metrics go (default: nowhere).
func WithMetrics(set *metrics.Set) Option { return func(w *Watcher) { w.metrics = set } }

// WithClock sets the clock of sync ages, empty-list grace and snapshot
// times (default time.Now).
func WithClock(now func() time.Time) Option { return func(w *Watcher) { w.now = now } }

func (o *Settings) normalize() error {
	if len(o.Groups) == 0 {
		o.Groups = []string{discovery.DefaultGroup}
	}
	if o.ListInterval <= 0 {
		o.ListInterval = 1500 * time.Millisecond
	}
	if o.ReconcileInterval <= 0 {
		o.ReconcileInterval = 60 * time.Second
	}
	if o.ReconcileRate <= 0 {
		o.ReconcileRate = 1
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
	if o.SnapshotEvery <= 0 {
		o.SnapshotEvery = time.Second
	}
	return nil
}

// Watcher is a discovery.Source over Nacos.
//
// Nacos's load per Watcher follows changes, not services: a push makes it
// read that one service; the groups are listed every ListInterval; the
// backstop re-reads at most ReconcileRate services a second. After Nacos
// has been unreachable, every service is re-read once.
//
// Only Nacos's answers change the pool: a failed listing, a refused login
// or a failed read leaves it as it is.
type Watcher struct {
	client  Client
	opts    Settings
	log     zerolog.Logger
	metrics *metrics.Set
	now     func() time.Time

	mu     sync.Mutex
	svcs   map[string]*watched // by "GROUP@@service"; guarded by mu
	dirty  map[string]bool     // services Nacos said changed, not yet read; guarded by mu
	wake   chan struct{}       // has a value when dirty may be non-empty
	cursor int                 // next service of the backstop, in key order; Run goroutine only

	lastSync atomic.Int64 // unix nanos of the last complete listing
	pushes   *metrics.Counter
	recons   *metrics.Counter
	errs     map[string]*metrics.Counter // by kind
	failing  string                      // kind of the current failure streak; Run goroutine only
	lastLog  time.Time                   // of the last failure logged; Run goroutine only
	written  uint64                      // pool version last written to the snapshot file
	pool     *discovery.Pool
}

// watched is the state of one service.
type watched struct {
	group, name  string
	emptySince   time.Time // when an empty list was first held back; zero if none
	missing      bool      // not in the last listing
	subscribed   bool
	fromSnapshot bool // loaded from the snapshot file, not yet seen in a listing
}

// Error kinds counted in modelgate_nacos_errors_total.
const (
	kindAuth       = "auth"       // the server refused the credentials
	kindConnection = "connection" // no server answered, or one failed
)

var _ discovery.Source = (*Watcher)(nil)

// NewWatcher returns a Watcher over client. It does nothing until Run.
func NewWatcher(client Client, s Settings, opts ...Option) (*Watcher, error) {
	if err := s.normalize(); err != nil {
		return nil, err
	}
	w := &Watcher{client: client, opts: s, log: zerolog.Nop(), now: time.Now, svcs: map[string]*watched{}, dirty: map[string]bool{},
		wake: make(chan struct{}, 1), errs: map[string]*metrics.Counter{}}
	for _, o := range opts {
		o(w)
	}
	if s := w.metrics; s != nil {
		w.pushes = s.NewCounter(`modelgate_nacos_updates_total{source="push"}`)
		w.recons = s.NewCounter(`modelgate_nacos_updates_total{source="reconcile"}`)
		for _, k := range []string{kindAuth, kindConnection} {
			w.errs[k] = s.NewCounter(`modelgate_nacos_errors_total{kind="` + k + `"}`)
		}
		s.NewGauge(`modelgate_nacos_sync_age_seconds`, func() float64 {
			last := w.lastSync.Load()
			if last == 0 {
				return -1
			}
			return w.now().Sub(time.Unix(0, last)).Seconds()
		})
		s.NewGauge(`modelgate_nacos_held_services`, func() float64 { return float64(w.held()) })
		if c, ok := client.(interface{ Calls() uint64 }); ok {
			s.NewGauge(`modelgate_nacos_http_requests_total`, func() float64 { return float64(c.Calls()) })
		}
	}
	return w, nil
}

// Run implements discovery.Source. It returns when ctx is done, after
// unsubscribing from every service.
//
// The pool is marked synced after the first complete listing and the reads
// of its services. When that first listing fails for want of a server (not
// because the login was refused) and a snapshot file exists, the pool is
// filled from it, marked stale and synced; Nacos's view replaces it as soon
// as a listing succeeds.
func (w *Watcher) Run(ctx context.Context, pool *discovery.Pool) error {
	w.pool = pool
	defer w.unsubscribeAll()

	list := time.NewTimer(w.jitter(w.opts.ListInterval, 0.1))
	defer list.Stop()
	snap := time.NewTicker(w.opts.SnapshotEvery)
	defer snap.Stop()

	if err := w.list(); err != nil && !errors.Is(err, ErrAuth) {
		w.loadSnapshot()
	}
	recon := time.NewTimer(w.reconcileDelay()) // paced by the services just listed
	defer recon.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-list.C:
			_ = w.list()
			list.Reset(w.jitter(w.opts.ListInterval, 0.1))
		case <-recon.C:
			w.reconcileNext()
			recon.Reset(w.reconcileDelay())
		case <-w.wake:
			w.fetchChanged()
		case <-snap.C:
			w.writeSnapshot()
		}
	}
}

// jitter returns d scaled by a random factor in [1-f, 1+f].
func (w *Watcher) jitter(d time.Duration, f float64) time.Duration {
	return time.Duration(float64(d) * (1 - f + 2*f*rand.Float64()))
}

// reconcileDelay is the wait before the backstop's next read.
func (w *Watcher) reconcileDelay() time.Duration {
	w.mu.Lock()
	n := len(w.svcs)
	w.mu.Unlock()
	if n == 0 { // look again soon: services may be known by then
		return w.jitter(w.opts.ListInterval, 0.2)
	}
	d := max(w.opts.ReconcileInterval/time.Duration(n), time.Duration(float64(time.Second)/w.opts.ReconcileRate))
	return w.jitter(d, 0.2)
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

// parallelReads is how many instance lists fetchChanged reads from Nacos
// at once: after a burst of changes (or at start) the reads overlap their
// round trips instead of queueing behind one another.
const parallelReads = 8

// fetchChanged reads and applies every service Nacos said changed, up to
// parallelReads at a time.
func (w *Watcher) fetchChanged() {
	w.mu.Lock()
	var todo [][3]string
	for key := range w.dirty {
		if s, ok := w.svcs[key]; ok && !s.fromSnapshot {
			todo = append(todo, [3]string{key, s.group, s.name})
		}
	}
	clear(w.dirty)
	w.mu.Unlock()
	errs := make([]error, len(todo))
	sem := make(chan struct{}, parallelReads)
	var wg sync.WaitGroup
	for i, k := range todo {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			list, err := w.client.Instances(k[1], k[2])
			if err != nil {
				errs[i] = err
				return
			}
			w.apply(k[0], list, w.pushes)
		})
	}
	wg.Wait()
	for _, err := range errs { // counted and logged here: failed is the Run goroutine's
		if err != nil {
			w.failed(err, "nacos read after a change failed; keeping the service's last list")
		}
	}
}

// failed counts err by kind and logs it: the first error of a streak (or
// of a new kind), then at most once a minute. A refused login is logged
// at error level, with the server's message.
func (w *Watcher) failed(err error, msg string) {
	kind := kindConnection
	if errors.Is(err, ErrAuth) {
		kind = kindAuth
	}
	if c := w.errs[kind]; c != nil {
		c.Inc()
	}
	now := w.now()
	if kind == w.failing && now.Sub(w.lastLog) < time.Minute {
		return
	}
	w.failing, w.lastLog = kind, now
	ev := w.log.Warn()
	if kind == kindAuth {
		ev = w.log.Error()
	}
	ev.Err(err).Str("kind", kind).Msg(msg)
}

// recovered logs the end of a failure streak.
func (w *Watcher) recovered() {
	if w.failing != "" {
		w.log.Info().Str("after", w.failing).Msg("nacos answers again")
		w.failing = ""
	}
}

// list lists every group, subscribes to new services and retires vanished
// ones. An incomplete listing changes nothing and is returned as an error.
func (w *Watcher) list() error {
	found := map[string][2]string{}
	for _, g := range w.opts.Groups {
		names, err := w.client.ListServices(g)
		if err != nil {
			w.failed(err, "nacos listing failed; keeping the last known pool")
			return err
		}
		for _, n := range names {
			found[discovery.ServiceKey(g, n)] = [2]string{g, n}
		}
	}
	wasFailing := w.failing != ""
	w.recovered()
	for key, gn := range found {
		w.mu.Lock()
		s, ok := w.svcs[key]
		if !ok {
			s = &watched{group: gn[0], name: gn[1]}
			w.svcs[key] = s
		}
		s.missing, s.fromSnapshot = false, false
		subscribed := s.subscribed
		w.mu.Unlock()
		if subscribed {
			if wasFailing {
				w.changed(key) // re-read what may have changed while Nacos was away
			}
			continue
		}
		// The SDK may call back inside Subscribe: hold no lock here.
		if err := w.client.Subscribe(gn[0], gn[1], func() { w.changed(key) }); err != nil {
			w.log.Warn().Err(err).Str("service", key).Msg("nacos subscribe failed; reading the service anyway, will retry")
		} else {
			w.mu.Lock()
			s.subscribed = true
			w.mu.Unlock()
			w.log.Info().Str("service", key).Msg("subscribed")
		}
		w.changed(key) // read it now, whether or not the SDK called back
	}
	var stale []string
	w.mu.Lock()
	for key, s := range w.svcs {
		if _, ok := found[key]; ok {
			continue
		}
		if s.fromSnapshot { // Nacos has answered: the snapshot's extra services go at once
			delete(w.svcs, key)
			stale = append(stale, key)
			continue
		}
		s.missing = true
	}
	w.mu.Unlock()
	for _, key := range stale {
		w.pool.Remove(key)
	}
	w.retireMissing()
	w.fetchChanged() // read the new services before saying the pool is synced
	w.lastSync.Store(w.now().UnixNano())
	if w.pool.Stale() {
		w.pool.SetStale(false)
		w.log.Info().Msg("nacos answers: its view replaces the pool snapshot")
	}
	w.pool.MarkSynced()
	return nil
}

// loadSnapshot fills the pool from the snapshot file, marks it stale and
// synced. Nothing happens without a file.
func (w *Watcher) loadSnapshot() {
	if w.opts.SnapshotPath == "" {
		return
	}
	services, written, err := discovery.ReadSnapshotFile(w.opts.SnapshotPath)
	if err != nil {
		w.log.Warn().Err(err).Msg("nacos unreachable at start and no pool snapshot to serve from")
		return
	}
	w.mu.Lock()
	for key := range services {
		g, n := discovery.SplitServiceKey(key, "")
		if _, ok := w.svcs[key]; !ok {
			w.svcs[key] = &watched{group: g, name: n, fromSnapshot: true}
		}
	}
	w.mu.Unlock()
	for key, list := range services {
		w.pool.Update(key, list)
	}
	w.written = w.pool.Snapshot().Version
	w.pool.SetStale(true)
	w.pool.MarkSynced()
	w.log.Warn().Str("file", w.opts.SnapshotPath).Time("written", written).Int("services", len(services)).
		Msg("nacos unreachable at start: serving the pool snapshot until it answers")
}

// writeSnapshot writes the pool to the snapshot file if it changed since
// the last write and Nacos confirmed it.
func (w *Watcher) writeSnapshot() {
	if w.opts.SnapshotPath == "" || w.pool.Stale() || w.lastSync.Load() == 0 {
		return
	}
	snap := w.pool.Snapshot()
	if snap.Version == w.written {
		return
	}
	if err := discovery.WriteSnapshotFile(w.opts.SnapshotPath, snap, w.now()); err != nil {
		w.log.Warn().Err(err).Msg("writing the pool snapshot failed")
		return
	}
	w.written = snap.Version
}

// reconcileNext re-reads the backstop's next service, in key order, and
// applies what changed, for pushes that were lost.
func (w *Watcher) reconcileNext() {
	w.mu.Lock()
	keys := slices.Sorted(maps.Keys(w.svcs))
	var k [3]string
	if len(keys) > 0 {
		w.cursor %= len(keys)
		key := keys[w.cursor]
		w.cursor++
		if s := w.svcs[key]; !s.missing && !s.fromSnapshot {
			k = [3]string{key, s.group, s.name}
		}
	}
	w.mu.Unlock()
	if k[0] != "" {
		list, err := w.client.Instances(k[1], k[2])
		if err != nil {
			w.failed(err, "nacos reconcile read failed; keeping the service's last list")
		} else {
			w.apply(k[0], list, w.recons)
		}
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
	now := w.now()
	if s.emptySince.IsZero() {
		s.emptySince = now
		w.log.Warn().Str("service", key).Dur("grace", w.opts.EmptyGrace).
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
		if s.subscribed {
			if err := w.client.Unsubscribe(s.group, s.name); err != nil {
				w.log.Warn().Err(err).Str("service", key).Msg("nacos unsubscribe failed")
			}
		}
		w.pool.Remove(key)
		w.log.Info().Str("service", key).Msg("service gone, unsubscribed")
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
		if s.subscribed {
			_ = w.client.Unsubscribe(s.group, s.name)
		}
	}
}
