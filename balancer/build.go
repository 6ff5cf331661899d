package balancer

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/modelgate/modelgate/discovery"
)

// state is one immutable build of the balancer: every route and service
// compiled against one pool snapshot and one route list. Pick reads it
// without locking; a rebuild replaces it whole.
type state struct {
	snap      *discovery.Snapshot
	routes    map[string]*route // by Route.Name
	services  map[string]*route // by pool key, for requests without a known route
	instances []instanceRef     // every instance in the pool, for introspection
	changed   chan struct{}     // closed when a newer state replaces this one
}

type instanceRef struct {
	in *discovery.Instance
	st *stats
}

// route is a compiled Route: its candidates split into version groups.
type route struct {
	name   string   // "route NAME" or "service KEY", for errors
	index  tagIndex // of the service's usable instances
	groups []group  // one per version of the split, or one for all
	total  uint64   // sum of group weights
	err    error    // non-nil when there is no candidate at all
	policy Policy   // the route's, or the balancer's
	panics *atomic.Uint64
	canary *canaryGroup // the route's Canary overlay, if any
}

// group is one version's candidates, with the preferred subset apart.
type group struct {
	weight    uint64
	pref, all set // pref is empty when no preference or nothing to narrow
}

// set is a candidate set with its policy's selector.
type set struct {
	nodes []node
	sel   Selector
}

// build compiles snap and b.routes into a state, creating the stats of new
// instances and dropping those of instances that left. b.mu is held.
func (b *Balancer) build(snap *discovery.Snapshot) *state {
	services := snap.Services()
	total := 0
	for _, svc := range services {
		total += len(svc.Instances)
	}
	st := &state{snap: snap, routes: make(map[string]*route, len(b.routes)),
		services: make(map[string]*route, len(services)), instances: make([]instanceRef, 0, total),
		changed: make(chan struct{})}
	b.gen++
	type usable struct {
		nodes []node
		index tagIndex
	}
	byKey := make(map[string]usable, len(services))
	breakers := map[string]*BreakerSettings{} // by service, of routes that set them
	for _, rt := range b.routes {
		if k := rt.serviceKey(); rt.Breaker != nil && breakers[k] == nil {
			s := rt.Breaker.withDefaults()
			breakers[k] = &s
		}
	}
	for _, svc := range services {
		nodes := make([]node, 0, len(svc.Instances))
		brk := breakers[svc.Key]
		if brk == nil {
			brk = &b.env.brk
		}
		for _, in := range svc.Instances {
			id := in.ID()
			s := b.stats[id]
			if s == nil {
				b.serials = b.serials%serialMask + 1
				s = newStats(id, b.serials, b.env, brk)
				b.stats[id] = s
			} else {
				s.brk.configure(brk)
			}
			s.seen = b.gen
			st.instances = append(st.instances, instanceRef{in, s})
			if in.Usable() {
				nodes = append(nodes, node{in: in, st: s, id: id, weight: in.Weight, inv: 1 / in.Weight, max: int64(in.MaxConcurrency)})
			}
		}
		u := usable{nodes, newTagIndex(nodes)}
		byKey[svc.Key] = u
		st.services[svc.Key] = b.compile("service "+svc.Key, svc.Key, u.nodes, u.index, Route{},
			counter(b.servicePanics, svc.Key))
	}
	for _, rt := range b.routes {
		key := rt.serviceKey()
		u := byKey[key]
		r := b.compileCanary("route "+rt.Name, key, u.nodes, u.index, rt, counter(b.routePanics, rt.Name))
		if snap.Service(key) == nil {
			r.err = fmt.Errorf("%w: route %s: service %s is not in the pool", ErrNoInstance, rt.Name, key)
		}
		st.routes[rt.Name] = r
	}
	maps.DeleteFunc(b.stats, func(_ string, s *stats) bool { return s.seen != b.gen })
	b.env.prefixes.prune(func(k string) bool { return st.services[k] != nil })
	maps.DeleteFunc(b.servicePanics, func(k string, _ *atomic.Uint64) bool { return st.services[k] == nil })
	maps.DeleteFunc(b.routePanics, func(k string, _ *atomic.Uint64) bool { return st.routes[k] == nil })
	return st
}

// compile builds the route rt over the usable instances of service key.
func (b *Balancer) compile(name, key string, usable []node, index tagIndex, rt Route, panics *atomic.Uint64) *route {
	r := &route{name: name, index: index, panics: panics}
	if len(usable) == 0 {
		r.err = fmt.Errorf("%w: %s: service %s has no usable instance", ErrNoInstance, name, key)
		return r
	}
	if len(rt.Models) > 0 {
		if usable = keep(usable, func(n *node) bool { return n.in.ServesAny(rt.Models) }); len(usable) == 0 {
			r.err = fmt.Errorf("%w: %s: no usable instance of %s serves model %s", ErrNoInstance, name, key,
				strings.Join(rt.Models, " or "))
			return r
		}
	}
	tagged := index.filter(usable, rt.Tags)
	switch {
	case len(tagged) == 0:
		r.err = fmt.Errorf("%w: %s: no usable instance of %s has tags %s", ErrNoInstance, name, key, formatTags(rt.Tags))
		return r
	}
	r.policy = rt.Policy
	if r.policy == nil {
		r.policy = b.policy
	}
	if len(rt.Split) == 0 {
		r.byNacosWeight(b, tagged, rt.Prefer)
		return r
	}
	versions := slices.Sorted(maps.Keys(rt.Split))
	for _, v := range versions {
		if w := rt.Split[v]; w > 0 {
			r.add(b, uint64(w), keep(tagged, func(n *node) bool { return n.in.Version == v }), rt.Prefer)
		}
	}
	if len(r.groups) == 0 {
		r.err = fmt.Errorf("%w: %s: no usable instance of %s is of version %s", ErrNoInstance, name, key,
			strings.Join(versions, " or "))
	}
	return r
}

// byNacosWeight groups nodes by version when they carry more than one, each
// version weighted by the sum of its instances' Nacos weights: the split of
// a canary rollout by weight, which then holds however the policy balances
// load inside each version. With one version there is one group.
func (r *route) byNacosWeight(b *Balancer, nodes []node, prefer map[string]string) {
	sums := map[string]float64{}
	for i := range nodes {
		sums[nodes[i].in.Version] += nodes[i].weight
	}
	if len(sums) < 2 {
		r.add(b, 1, nodes, prefer)
		return
	}
	for _, v := range slices.Sorted(maps.Keys(sums)) {
		w := uint64(math.Round(sums[v] * 1000)) // weights are floats; keep three decimals
		r.add(b, max(w, 1), keep(nodes, func(n *node) bool { return n.in.Version == v }), prefer)
	}
}

// add appends a version group over nodes with weight w, unless nodes is
// empty (the version's share then goes to the others).
func (r *route) add(b *Balancer, w uint64, nodes []node, prefer map[string]string) {
	if len(nodes) == 0 {
		return
	}
	g := group{weight: w, all: r.newSet(b, nodes)}
	if pref := r.index.filter(nodes, prefer); len(pref) > 0 && len(pref) < len(nodes) {
		g.pref = r.newSet(b, pref)
	}
	r.groups = append(r.groups, g)
	r.total += w
}

func (r *route) newSet(b *Balancer, nodes []node) set {
	return set{nodes: nodes, sel: r.policy.Build(Candidates{nodes: nodes, env: b.env})}
}

// keep returns the nodes for which ok is true: nodes itself if all, else a
// new slice, nil if none. Built sets are read-only, so they may share.
func keep(nodes []node, ok func(*node) bool) []node {
	n := 0
	for i := range nodes {
		if ok(&nodes[i]) {
			n++
		}
	}
	switch n {
	case 0:
		return nil
	case len(nodes):
		return nodes
	}
	out := make([]node, 0, n)
	for i := range nodes {
		if ok(&nodes[i]) {
			out = append(out, nodes[i])
		}
	}
	return out
}

// counter returns the counter for key in m, creating it.
func counter(m map[string]*atomic.Uint64, key string) *atomic.Uint64 {
	c := m[key]
	if c == nil {
		c = new(atomic.Uint64)
		m[key] = c
	}
	return c
}
