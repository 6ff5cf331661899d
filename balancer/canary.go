package balancer

import "sync/atomic"

// CanaryScale is the denominator of Canary.Share: shares are in
// hundredths of a percent.
const CanaryScale = 10000

// Canary is an overlay on one route's split: Version takes Share (out of
// CanaryScale) of the route's traffic, and the rest of the traffic divides
// among the other versions exactly as the route's split (or their Nacos
// weights) says. Share 0 sends nothing new to Version; CanaryScale sends it
// everything while it has an available instance.
//
// With Request.StickyKey set, whether a key goes to the canary is decided
// by a hash of the key against Share, and the other versions by the split's
// own hash, so raising Share only ever moves keys onto the canary: a key
// that went to it at 5 % still does at 25 %, and a key that did not go to
// it keeps its version until it does.
type Canary struct {
	Version string
	Share   int
}

// SetCanary puts the overlay c on the named route, replacing any earlier
// one, from the next pick on; an empty c.Version removes the overlay. It
// is safe for concurrent use; it rebuilds the balancer's state (the same
// cost as SetRoutes), so call it per rollout step, not per request.
func (b *Balancer) SetCanary(route string, c Canary) {
	c.Share = min(max(c.Share, 0), CanaryScale)
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.Version == "" {
		if _, ok := b.canaries[route]; !ok {
			return
		}
		delete(b.canaries, route)
	} else {
		if b.canaries[route] == c {
			return
		}
		b.canaries[route] = c
	}
	b.install(b.pool.Snapshot())
}

// CanaryOf returns the overlay on the named route, if any.
func (b *Balancer) CanaryOf(route string) (Canary, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.canaries[route]
	return c, ok
}

// canaryGroup is a compiled Canary: the canary version's candidates and
// their share.
type canaryGroup struct {
	share uint64 // of CanaryScale
	g     group
}

// splitCanary returns the nodes of version v and the others; when either
// side is empty the overlay cannot apply and ok is false.
func splitCanary(nodes []node, v string) (canary, rest []node, ok bool) {
	canary = keep(nodes, func(n *node) bool { return n.in.Version == v })
	rest = keep(nodes, func(n *node) bool { return n.in.Version != v })
	return canary, rest, len(canary) > 0 && len(rest) > 0
}

// toCanary decides whether a pick goes to the canary: by a hash of the
// sticky key (independent of the split's hash h), else at random.
func (r *route) toCanary(e *env, h uint64) bool {
	if r.canary == nil || r.canary.share == 0 {
		return false
	}
	x := e.rand()
	if h != 0 {
		x = mix(h ^ canarySalt)
	}
	return x%CanaryScale < r.canary.share
}

// canarySalt separates the canary's hash of a sticky key from the split's.
const canarySalt = 0x63616e617279 // "canary"

// compileCanary compiles rt as compile does, with its Canary overlay (if
// any): the canary version's instances leave the split's groups for a
// group of their own. When the canary version or every other version has
// no usable instance, the overlay does not apply.
func (b *Balancer) compileCanary(name, key string, usable []node, index tagIndex, rt Route, panics *atomic.Uint64) *route {
	c, ok := b.canaries[rt.Name]
	if !ok {
		return b.compile(name, key, usable, index, rt, panics)
	}
	tagged := index.filter(usable, rt.Tags)
	canary, rest, ok := splitCanary(tagged, c.Version)
	if !ok {
		return b.compile(name, key, usable, index, rt, panics)
	}
	r := b.compile(name, key, rest, index, rt, panics)
	if r.err != nil { // nothing of the split is left besides the canary
		return b.compile(name, key, usable, index, rt, panics)
	}
	g := group{weight: 1, all: r.newSet(b, canary)}
	if pref := index.filter(canary, rt.Prefer); len(pref) > 0 && len(pref) < len(canary) {
		g.pref = r.newSet(b, pref)
	}
	r.canary = &canaryGroup{share: uint64(c.Share), g: g}
	return r
}
