package canary

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"gopkg.in/yaml.v3"
)

// Sync is the shared document through which replicas agree on their
// rollouts; the daemon keeps it in a Nacos Config entry.
type Sync interface {
	// Get returns the document's content, "" if there is none.
	Get() (string, error)
	// Publish replaces the document with content if it still holds prev;
	// it reports false, with no error, if it changed meanwhile.
	Publish(content, prev string) (bool, error)
}

// Shared is one route's entry in the shared document: the rollout's spec
// and where it is. An operator may write only the spec; a missing state
// means running from the first step.
type Shared struct {
	Spec   `yaml:",inline"`
	State  State     `yaml:"state,omitempty"`
	Step   int       `yaml:"step,omitempty"` // 1-based
	Reason string    `yaml:"reason,omitempty"`
	By     string    `yaml:"by,omitempty"` // the replica that wrote it
	At     time.Time `yaml:"at,omitempty"`
}

// Document is the shared document: entries by route name.
type Document map[string]Shared

// ParseDocument decodes a shared document.
func ParseDocument(content string) (Document, error) {
	d := Document{}
	if err := yaml.Unmarshal([]byte(content), &d); err != nil {
		return nil, fmt.Errorf("canary: shared document: %w", err)
	}
	return d, nil
}

func (d Document) encode() string {
	b, _ := yaml.Marshal(map[string]Shared(d))
	return "# canary rollouts, kept by modelgate: see its README\n" + string(b)
}

// snapshot is what r says about itself in the shared document; r.mu is held.
func (c *Controller) snapshot(r *rollout) Shared {
	by := ""
	if p := c.replica.Load(); p != nil {
		by = *p
	}
	return Shared{Spec: r.spec, State: r.state, Step: r.step + 1, Reason: r.reason, By: by, At: c.now().UTC()}
}

// Publish writes every changed rollout to the shared document, merging
// with what other replicas wrote: an entry of the same rollout that is
// aborted, promoted or at a later step is followed instead of overwritten
// (unless the local rollout was started through the admin API). It does
// nothing without a Sync.
func (c *Controller) Publish() {
	if c.sync == nil {
		return
	}
	c.mu.Lock()
	list := slices.Collect(maps.Values(c.rollouts))
	c.mu.Unlock()
	for _, r := range list {
		r.mu.Lock()
		dirty, force, snap := r.dirty, r.force, c.snapshot(r)
		r.mu.Unlock()
		if !dirty {
			continue
		}
		if done := c.publishOne(r.route, snap, force); done {
			r.mu.Lock()
			if r.state == snap.State && r.step+1 == snap.Step {
				r.dirty, r.force = false, false
			}
			r.mu.Unlock()
		}
	}
}

// publishOne merges snap into the shared document; it reports whether
// nothing is left to publish.
func (c *Controller) publishOne(route string, snap Shared, force bool) bool {
	for range 5 {
		cur, err := c.sync.Get()
		if err != nil {
			c.log.Warn().Err(err).Str("route", route).Msg("canary: reading the shared document failed; will retry")
			return false
		}
		d, err := ParseDocument(cur)
		if err != nil {
			c.log.Error().Err(err).Msg("canary: the shared document is not valid YAML; not overwriting it")
			return false
		}
		if e, ok := d[route]; ok && !force && sameRollout(e.Spec.WithDefaults(), snap.Spec) {
			ahead := e.State == Aborted || e.State == Promoted ||
				((e.State == Running || e.State == "") && e.Step > snap.Step)
			switch {
			case e.State == snap.State && e.Step == snap.Step:
				return true
			case ahead && snap.State == Running:
				c.follow(route, e)
				return true
			case ahead:
				return true // both ended; the first word stands
			}
		}
		d[route] = snap
		ok, err := c.sync.Publish(d.encode(), cur)
		if err != nil {
			c.log.Warn().Err(err).Str("route", route).Msg("canary: publishing to the shared document failed; will retry")
			return false
		}
		if ok {
			return true
		}
	}
	return false
}

// Follow applies the shared document content (from a watch of it): a new
// rollout in it starts here at its step and state; for a rollout of the
// same versions and steps an abort, a promotion or a later step is
// followed. Entries of invalid specs are logged and skipped.
func (c *Controller) Follow(content string) {
	d, err := ParseDocument(content)
	if err != nil {
		c.log.Error().Err(err).Msg("canary: ignoring the shared document")
		return
	}
	for _, route := range slices.Sorted(maps.Keys(d)) {
		c.follow(route, d[route])
	}
}

func (c *Controller) follow(route string, e Shared) {
	spec := e.Spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		c.log.Error().Err(err).Str("route", route).Msg("canary: ignoring an entry of the shared document")
		return
	}
	state := e.State
	if state == "" {
		state = Running
	}
	if state != Running && state != Aborted && state != Promoted {
		c.log.Error().Str("route", route).Str("state", string(state)).Msg("canary: unknown state in the shared document")
		return
	}
	step := max(e.Step, 1) - 1
	r := c.get(route)
	if r == nil {
		_ = c.startAt(route, spec, FromSync, state, step, e.Reason)
		return
	}
	r.mu.Lock()
	if !sameRollout(r.spec, spec) {
		r.mu.Unlock()
		_ = c.startAt(route, spec, FromSync, state, step, e.Reason)
		return
	}
	r.spec = spec
	var ev Event
	var changed bool
	who := e.By
	if who == "" {
		who = "the shared document"
	}
	switch {
	case r.state == Running && state != Running:
		ev, changed = c.endLocked(r, state, e.Reason, "followed", nil), true
		r.dirty = false
		ev.Message = fmt.Sprintf("%s by %s: %s", state, who, e.Reason)
	case r.state == Running && step > r.step:
		r.step, r.since, r.canary, r.base = min(step, len(spec.Steps)-1), c.now(), arm{}, arm{}
		ev, changed = c.applyLocked(r, "followed", fmt.Sprintf("step %d by %s", step+1, who), nil), true
	case r.state != Running && state == Running && !r.dirty:
		// Restarted on purpose (the entry was rewritten as running).
		r.state, r.step, r.since, r.canary, r.base, r.reason = Running, min(step, len(spec.Steps)-1), c.now(), arm{}, arm{}, ""
		r.running.Store(true)
		ev, changed = c.applyLocked(r, "followed", fmt.Sprintf("restarted at step %d by %s", step+1, who), nil), true
	}
	r.mu.Unlock()
	if changed {
		c.log.Warn().Str("route", route).Str("canary", spec.Version).Str("by", who).Str("state", string(r.stateNow())).
			Int("step", ev.Step).Msg("canary: following the shared document")
		c.emit(ev)
	}
}

func (r *rollout) stateNow() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}
