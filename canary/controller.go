package canary

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/modelgate/modelgate/balancer"
)

// State is where a rollout is.
type State string

// States of a rollout.
const (
	Running  State = "running"
	Aborted  State = "aborted"  // the canary's share is 0
	Promoted State = "promoted" // the canary's share is 100 %
)

// Origins of a rollout.
const (
	FromConfig = "config"
	FromAdmin  = "admin"
	FromSync   = "sync" // another replica or an operator, through the shared document
)

// ErrNoRollout is returned for a route without a rollout.
var ErrNoRollout = errors.New("canary: no rollout on this route")

// Overlay applies a canary share to a route; *balancer.Balancer is one.
type Overlay interface {
	SetCanary(route string, c balancer.Canary)
}

// Event is one thing that happened to a rollout.
type Event struct {
	At      time.Time `json:"at"`
	Route   string    `json:"route"`
	Kind    string    `json:"kind"` // started, step, breach, promoted, aborted, followed
	Step    int       `json:"step"` // 1-based
	Share   float64   `json:"share_percent"`
	Message string    `json:"message"`
	Verdict *Verdict  `json:"verdict,omitempty"`
}

// maxEvents is how many events a rollout keeps.
const maxEvents = 32

// Controller runs the rollouts of every route. Its methods are safe for
// concurrent use; Observe is the one on the request path.
type Controller struct {
	overlay  Overlay
	now      func() time.Time
	log      zerolog.Logger
	interval time.Duration
	onEvent  func(Event)
	sync     Sync
	replica  atomic.Pointer[string]
	wake     chan struct{}

	mu       sync.Mutex // guards rollouts and verdicts; taken before any rollout's mu
	rollouts map[string]*rollout
	verdicts map[string]*[2]uint64 // by route: pass, breach
	active   atomic.Pointer[map[string]*rollout]
}

// rollout is one route's rollout.
type rollout struct {
	route  string
	origin string

	mu           sync.Mutex
	spec         Spec // defaults filled
	state        State
	step         int // index into spec.Steps
	since        time.Time
	canary, base arm
	last         *Verdict
	reason       string
	events       []Event
	dirty        bool // changed since last published
	force        bool // publish over the shared entry whatever it says
	running      atomic.Bool
}

// Option configures a Controller.
type Option func(*Controller)

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *Controller) { c.now = now } }

// WithLogger sets the logger for steps and verdicts (default: none).
func WithLogger(l zerolog.Logger) Option { return func(c *Controller) { c.log = l } }

// WithInterval sets how often Run judges the rollouts (default 1s).
func WithInterval(d time.Duration) Option { return func(c *Controller) { c.interval = d } }

// OnEvent sets a function called with every event, synchronously, without
// the controller's locks held.
func OnEvent(fn func(Event)) Option { return func(c *Controller) { c.onEvent = fn } }

// WithSync shares rollout state with other replicas through s, under the
// name replica (host:port, say) in what it writes.
func WithSync(s Sync, replica string) Option {
	return func(c *Controller) { c.sync = s; c.replica.Store(&replica) }
}

// SetReplica renames this replica in what it writes to the shared
// document, e.g. once its listener's address is known.
func (c *Controller) SetReplica(name string) { c.replica.Store(&name) }

// New returns a Controller that applies canary shares through overlay.
func New(overlay Overlay, opts ...Option) *Controller {
	c := &Controller{overlay: overlay, now: time.Now, log: zerolog.Nop(), interval: time.Second,
		rollouts: map[string]*rollout{}, verdicts: map[string]*[2]uint64{}, wake: make(chan struct{}, 1)}
	for _, o := range opts {
		o(c)
	}
	return c
}

// publishActive republishes the map Observe reads; c.mu is held.
func (c *Controller) publishActive() {
	m := maps.Clone(c.rollouts)
	c.active.Store(&m)
}

// Start begins a rollout of spec on route at its first step, replacing any
// rollout the route had. origin is FromConfig, FromAdmin or FromSync; a
// rollout started from the admin API overwrites the shared entry even if
// an earlier rollout of the same versions was aborted there.
func (c *Controller) Start(route string, spec Spec, origin string) error {
	return c.startAt(route, spec, origin, Running, 0, "")
}

func (c *Controller) startAt(route string, spec Spec, origin string, state State, step int, reason string) error {
	if route == "" {
		return fmt.Errorf("%w: route is empty", ErrBadSpec)
	}
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("route %q: %w", route, err)
	}
	spec = spec.WithDefaults()
	step = min(max(step, 0), len(spec.Steps)-1)
	r := &rollout{route: route, origin: origin, spec: spec, state: state, step: step, since: c.now(),
		reason: reason, dirty: origin != FromSync, force: origin == FromAdmin}
	r.running.Store(state == Running)
	c.mu.Lock()
	c.rollouts[route] = r
	if c.verdicts[route] == nil {
		c.verdicts[route] = new([2]uint64)
	}
	c.publishActive()
	c.mu.Unlock()
	r.mu.Lock()
	msg := fmt.Sprintf("%s against %s from %s, steps %v every %v, min %d requests", spec.Version, spec.Baseline,
		origin, spec.Steps, spec.StepAfter, spec.MinRequests)
	if state != Running {
		msg += ", " + string(state) + " already"
	}
	ev := c.applyLocked(r, "started", msg, nil)
	r.mu.Unlock()
	c.log.Info().Str("route", route).Str("canary", spec.Version).Str("baseline", spec.Baseline).
		Str("state", string(state)).Int("step", step+1).Float64("share_percent", r.share()).Msg("canary rollout started")
	c.emit(ev)
	c.poke()
	return nil
}

// share is the canary's share in percent in r's state; r.mu is held.
func (r *rollout) share() float64 {
	switch r.state {
	case Aborted:
		return 0
	case Promoted:
		return 100
	}
	return r.spec.Steps[r.step]
}

// applyLocked sets the overlay for r's state, records an event and
// returns it; r.mu is held.
func (c *Controller) applyLocked(r *rollout, kind, msg string, v *Verdict) Event {
	share := r.share()
	c.overlay.SetCanary(r.route, balancer.Canary{Version: r.spec.Version,
		Share: int(share*balancer.CanaryScale/100 + 0.5)})
	ev := Event{At: c.now(), Route: r.route, Kind: kind, Step: r.step + 1, Share: share, Message: msg, Verdict: v}
	r.events = append(r.events, ev)
	if len(r.events) > maxEvents {
		r.events = slices.Delete(r.events, 0, len(r.events)-maxEvents)
	}
	return ev
}

func (c *Controller) emit(evs ...Event) {
	if c.onEvent == nil {
		return
	}
	for _, ev := range evs {
		c.onEvent(ev)
	}
}

// poke wakes Run to publish at once.
func (c *Controller) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Controller) get(route string) *rollout {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rollouts[route]
}

// Abort stops the route's rollout by hand: the canary's share goes to 0 at
// once. Aborting a rollout that is not running changes nothing.
func (c *Controller) Abort(route, reason string) error {
	r := c.get(route)
	if r == nil {
		return fmt.Errorf("%w: %q", ErrNoRollout, route)
	}
	if reason == "" {
		reason = "aborted through the admin API"
	}
	r.mu.Lock()
	if r.state != Running {
		r.mu.Unlock()
		return nil
	}
	ev := c.endLocked(r, Aborted, reason, "aborted", nil)
	r.mu.Unlock()
	c.log.Warn().Str("route", route).Str("canary", r.spec.Version).Str("reason", reason).Msg("canary rollout aborted")
	c.emit(ev)
	c.poke()
	return nil
}

// endLocked moves r to a final state; r.mu is held.
func (c *Controller) endLocked(r *rollout, state State, reason, kind string, v *Verdict) Event {
	r.state, r.reason, r.dirty = state, reason, true
	r.running.Store(false)
	return c.applyLocked(r, kind, reason, v)
}

// Remove drops the route's rollout and its overlay: the route's own split
// applies again. It does not touch the shared document.
func (c *Controller) Remove(route string) {
	c.mu.Lock()
	r := c.rollouts[route]
	delete(c.rollouts, route)
	delete(c.verdicts, route)
	c.publishActive()
	c.mu.Unlock()
	if r != nil {
		r.running.Store(false)
		c.overlay.SetCanary(route, balancer.Canary{})
		c.log.Info().Str("route", route).Msg("canary rollout removed")
	}
}

// SetConfigured makes the rollouts in specs (by route) the configured
// ones, as at a config load or reload: a route whose rollout is the same
// (versions and steps) keeps its progress and takes the new thresholds and
// timings; a new or different one starts; a rollout started from config
// whose route is no longer in specs is removed. Rollouts started through
// the admin API or the shared document are left alone. It returns the
// first invalid spec's error after applying the valid ones.
func (c *Controller) SetConfigured(specs map[string]Spec) error {
	var errs []error
	for _, route := range slices.Sorted(maps.Keys(specs)) {
		spec := specs[route]
		if err := spec.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("route %q: %w", route, err))
			continue
		}
		spec = spec.WithDefaults()
		if r := c.get(route); r != nil {
			r.mu.Lock()
			same := sameRollout(r.spec, spec)
			if same {
				r.spec = spec
			}
			r.mu.Unlock()
			if same {
				continue
			}
		}
		errs = append(errs, c.Start(route, spec, FromConfig))
	}
	c.mu.Lock()
	var gone []string
	for route, r := range c.rollouts {
		if _, ok := specs[route]; !ok && r.origin == FromConfig {
			gone = append(gone, route)
		}
	}
	c.mu.Unlock()
	for _, route := range gone {
		c.Remove(route)
	}
	return errors.Join(errs...)
}

// Observe records one outcome of version on route. It does nothing unless
// the route has a running rollout and version is its canary or baseline.
func (c *Controller) Observe(route, version string, o Outcome) {
	m := c.active.Load()
	if m == nil || o.Canceled {
		return
	}
	r := (*m)[route]
	if r == nil || !r.running.Load() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != Running {
		return
	}
	switch version {
	case r.spec.Version:
		r.canary.add(&o, r.spec.Thresholds.ShortReply)
	case r.spec.Baseline:
		r.base.add(&o, r.spec.Thresholds.ShortReply)
	}
}

// Watching reports whether route has a running rollout, so that the
// router gathers the details Observe needs (finish_reason) only then.
func (c *Controller) Watching(route string) bool {
	m := c.active.Load()
	if m == nil {
		return false
	}
	r := (*m)[route]
	return r != nil && r.running.Load()
}

// Tick judges every running rollout now: a breach aborts it, a step that
// has lasted StepAfter with both versions at MinRequests and no breach
// passes. Run calls it every interval; tests call it with a fake clock.
func (c *Controller) Tick() {
	c.mu.Lock()
	list := slices.Collect(maps.Values(c.rollouts))
	c.mu.Unlock()
	for _, r := range list {
		c.judge(r)
	}
}

func (c *Controller) judge(r *rollout) {
	now := c.now()
	r.mu.Lock()
	if r.state != Running {
		r.mu.Unlock()
		return
	}
	cf, bf := r.canary.figures(), r.base.figures()
	if cf.Requests < r.spec.MinRequests || bf.Requests < r.spec.MinRequests {
		r.mu.Unlock()
		return
	}
	result, checks := judge(cf, bf, r.spec.Thresholds)
	if result == Pass && now.Sub(r.since) < r.spec.StepAfter {
		r.mu.Unlock()
		return // passing so far; the step is not over
	}
	v := &Verdict{Result: result, Step: r.step + 1, Share: r.share(), At: now, Canary: cf, Baseline: bf, Checks: checks}
	r.last = v
	c.count(r.route, result)
	var ev Event
	switch {
	case result == Breach:
		ev = c.endLocked(r, Aborted, "rolled back: "+v.Summary(), "breach", v)
	case r.step == len(r.spec.Steps)-1 || r.spec.Steps[r.step+1] >= 100:
		// No further step to judge: at 100 % the baseline has no traffic.
		r.step = len(r.spec.Steps) - 1
		ev = c.endLocked(r, Promoted, "promoted: "+v.Summary(), "promoted", v)
	default:
		r.step++
		r.since, r.canary, r.base, r.dirty = now, arm{}, arm{}, true
		ev = c.applyLocked(r, "step", v.Summary(), v)
	}
	state := r.state
	r.mu.Unlock()
	le := c.log.Info()
	msg := "canary step passed"
	switch state {
	case Aborted:
		le, msg = c.log.Warn(), "canary rolled back"
	case Promoted:
		msg = "canary promoted"
	}
	le.Str("route", r.route).Str("canary", r.spec.Version).Str("baseline", r.spec.Baseline).Int("step", v.Step).
		Float64("share_percent", v.Share).Str("result", result).Strs("breached", v.Breached()).
		Float64("canary_error_ratio", cf.ErrorRatio).Float64("baseline_error_ratio", bf.ErrorRatio).
		Float64("canary_ttft_p95_ms", cf.TTFTP95ms).Float64("baseline_ttft_p95_ms", bf.TTFTP95ms).
		Float64("canary_tokens_per_second", cf.TokensPerSecond).Float64("baseline_tokens_per_second", bf.TokensPerSecond).
		Float64("canary_bad_reply_ratio", cf.BadReplyRatio).Float64("baseline_bad_reply_ratio", bf.BadReplyRatio).
		Int("canary_requests", cf.Requests).Int("baseline_requests", bf.Requests).Msg(msg)
	c.emit(ev)
}

func (c *Controller) count(route, result string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.verdicts[route]
	if v == nil {
		v = new([2]uint64)
		c.verdicts[route] = v
	}
	if result == Pass {
		v[0]++
	} else {
		v[1]++
	}
}

// Run judges the rollouts every interval and publishes changes to the
// shared document (if any), until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			c.Tick()
		case <-c.wake:
		}
		c.Publish()
	}
}
