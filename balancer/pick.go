package balancer

import (
	"fmt"

	"github.com/sony/gobreaker/v2"
)

// pick serves one request on route r. It does not allocate unless it
// fails, and locks only inside a policy that says so (wrr) or to turn an
// open breaker past its timeout half-open.
func (r *route) pick(e *env, req *Request) (Picked, error) {
	if r.err != nil {
		return Picked{}, r.err
	}
	c := Candidates{req: req, env: e}
	if len(req.Tags) > 0 {
		var ok bool
		if c.want, c.slow, ok = r.index.mask(req.Tags); !ok {
			return Picked{}, r.noMatch(&c)
		}
	}
	var h uint64
	if req.StickyKey != "" && (len(r.groups) > 1 || r.canary != nil) {
		h = stickyHash(req.StickyKey)
	}
	canary := r.toCanary(e, h)
	for c.level = levelStrict; c.level <= levelOverflow; c.level++ {
		if canary {
			if p, ok := r.canary.g.pick(&c); ok {
				return p, nil
			}
		}
		if p, ok := r.pickLevel(&c, h); ok {
			return p, nil
		}
	}
	if p, ok := r.panicPick(&c); ok {
		r.panics.Add(1)
		return p, nil
	}
	return Picked{}, r.noMatch(&c)
}

// pickLevel chooses a version by the split (by the sticky hash h when not
// 0) and a candidate within it, moving the share of versions with nothing
// available at c.level to the others.
func (r *route) pickLevel(c *Candidates, h uint64) (Picked, bool) {
	if len(r.groups) == 1 {
		return r.groups[0].pick(c)
	}
	var tried uint64
	for total := r.total; total > 0; {
		var x uint64
		if h != 0 {
			x, h = h%total, mix(h)
		} else {
			x = c.env.rand() % total
		}
		gi := r.choose(x, tried)
		if p, ok := r.groups[gi].pick(c); ok {
			return p, true
		}
		tried |= 1 << gi
		total -= r.groups[gi].weight
	}
	return Picked{}, false
}

// choose returns the group at point x of the weights of the groups not in
// tried.
func (r *route) choose(x, tried uint64) int {
	last := 0
	for i := range r.groups {
		if tried&(1<<i) != 0 {
			continue
		}
		last = i
		if x < r.groups[i].weight {
			return i
		}
		x -= r.groups[i].weight
	}
	return last
}

// pick tries the preferred candidates of g, then all of them.
func (g *group) pick(c *Candidates) (Picked, bool) {
	if len(g.pref.nodes) > 0 {
		if p, ok := g.pref.pick(c); ok {
			return p, true
		}
	}
	return g.all.pick(c)
}

// pick asks the selector and admits its choice, asking again a few times if
// concurrent picks took the last slot meanwhile.
func (s *set) pick(c *Candidates) (Picked, bool) {
	c.nodes = s.nodes
	for range 3 {
		i := s.sel.Select(*c)
		if i < 0 || i >= len(s.nodes) {
			return Picked{}, false
		}
		if p, ok := s.nodes[i].admit(c.level); ok {
			return p, true
		}
	}
	return Picked{}, false
}

// panicPick picks the least bad of the candidates that match the request
// when none is admitted: the breaker closest to closing (closed, then
// half-open, then open the longest), then the fewest in flight. The attempt
// bypasses the breaker and its outcome does not count toward it.
func (r *route) panicPick(c *Candidates) (Picked, bool) {
	c.level = levelPanic
	var best *node
	for gi := range r.groups {
		c.nodes = r.groups[gi].all.nodes
		for i := range c.nodes {
			if n := &c.nodes[i]; c.available(i) && (best == nil || lessBad(n, best)) {
				best = n
			}
		}
	}
	if best == nil {
		return Picked{}, false
	}
	best.st.inflight.Add(1)
	return Picked{Instance: best.in, st: best.st}, true
}

func lessBad(a, b *node) bool {
	sa, sb := a.st.brk.state(), b.st.brk.state()
	switch {
	case sa != sb:
		return sa < sb // closed < half-open < open
	case sa == gobreaker.StateOpen:
		if oa, ob := a.st.brk.openedAt.Load(), b.st.brk.openedAt.Load(); oa != ob {
			return oa < ob
		}
	}
	return a.st.inflight.Load() < b.st.inflight.Load()
}

// noMatch explains why no candidate matched the request.
func (r *route) noMatch(c *Candidates) error {
	if len(c.req.Tags) > 0 && !r.carries(c.req.Tags) {
		return fmt.Errorf("%w: %s: no usable instance has the requested tags %s", ErrNoInstance, r.name, formatTags(c.req.Tags))
	}
	return fmt.Errorf("%w: %s: every matching instance was already tried (%d)", ErrNoInstance, r.name, len(c.req.Exclude))
}

// carries reports whether some candidate carries tags.
func (r *route) carries(tags map[string]string) bool {
	for gi := range r.groups {
		if len(r.index.filter(r.groups[gi].all.nodes, tags)) > 0 {
			return true
		}
	}
	return false
}

// stickyHash hashes a sticky key (FNV-1a, then mixed); never 0.
func stickyHash(key string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * 1099511628211
	}
	return mix(h)
}

// mix is splitmix64's finaliser; it never returns 0 (the hash that means
// "not sticky"), and successive calls walk a sequence for retries.
func mix(h uint64) uint64 {
	h += 0x9e3779b97f4a7c15
	h = (h ^ h>>30) * 0xbf58476d1ce4e5b9
	h = (h ^ h>>27) * 0x94d049bb133111eb
	h ^= h >> 31
	if h == 0 {
		return 1
	}
	return h
}
