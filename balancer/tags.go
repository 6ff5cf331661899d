package balancer

import (
	"cmp"
	"slices"
)

// tagIndex turns the tags of a request into a bit mask once per pick, so
// that each candidate is checked with one AND. It covers the tags (key=value
// pairs) the usable instances of one service carry: a pair every instance
// carries needs no check (bit 0); the 64 most common others get a bit; the
// rest get noBit and are checked with HasTags. Keys are few and scanned;
// so are the values of a key until there are many, which go in a map.
type tagIndex []tagKey

type tagKey struct {
	k    string
	few  []tagVal          // while at most manyVals
	many map[string]uint64 // beyond
}

type tagVal struct {
	v   string
	bit uint64
}

const manyVals = 8

const noBit = ^uint64(0)

// newTagIndex indexes the tags of nodes and sets each node's mask.
func newTagIndex(nodes []node) tagIndex {
	type pair struct{ k, v string }
	type counted struct {
		pair
		n   int
		bit uint64
	}
	ids := map[pair]int{}
	var pairs []counted
	held := make([]int, 0, 4*len(nodes)) // pair ids of each node in turn
	for i := range nodes {
		for k, v := range nodes[i].in.Tags {
			id, ok := ids[pair{k, v}]
			if !ok {
				id = len(pairs)
				ids[pair{k, v}] = id
				pairs = append(pairs, counted{pair: pair{k, v}})
			}
			pairs[id].n++
			held = append(held, id)
		}
	}
	order := make([]int, len(pairs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		pa, pb := &pairs[a], &pairs[b]
		return cmp.Or(cmp.Compare(pb.n, pa.n), cmp.Compare(pa.k, pb.k), cmp.Compare(pa.v, pb.v))
	})
	var x tagIndex
	next := 0
	for _, id := range order {
		p := &pairs[id]
		p.bit = noBit
		switch {
		case p.n == len(nodes):
			p.bit = 0
		case next < 64:
			p.bit = 1 << next
			next++
		}
		i := slices.IndexFunc(x, func(t tagKey) bool { return t.k == p.k })
		if i < 0 {
			i = len(x)
			x = append(x, tagKey{k: p.k})
		}
		x[i].add(p.v, p.bit)
	}
	for i := range nodes {
		n := &nodes[i]
		for _, id := range held[:len(n.in.Tags)] {
			if bit := pairs[id].bit; bit != noBit {
				n.mask |= bit
			}
		}
		held = held[len(n.in.Tags):]
	}
	return x
}

// filter returns the nodes that carry tags (see keep).
func (x tagIndex) filter(nodes []node, tags map[string]string) []node {
	if len(tags) == 0 {
		return nodes
	}
	want, slow, ok := x.mask(tags)
	if !ok {
		return nil
	}
	return keep(nodes, func(n *node) bool { return n.mask&want == want && (!slow || n.in.HasTags(tags)) })
}

// lookup returns the bit of k=v and whether any instance carries it.
func (x tagIndex) lookup(k, v string) (uint64, bool) {
	for i := range x {
		if x[i].k == k {
			return x[i].lookup(v)
		}
	}
	return 0, false
}

func (t *tagKey) add(v string, bit uint64) {
	if t.many == nil && len(t.few) < manyVals {
		t.few = append(t.few, tagVal{v, bit})
		return
	}
	if t.many == nil {
		t.many = make(map[string]uint64, 2*manyVals)
		for _, tv := range t.few {
			t.many[tv.v] = tv.bit
		}
		t.few = nil
	}
	t.many[v] = bit
}

func (t *tagKey) lookup(v string) (uint64, bool) {
	if t.many != nil {
		bit, ok := t.many[v]
		return bit, ok
	}
	for _, tv := range t.few {
		if tv.v == v {
			return tv.bit, true
		}
	}
	return 0, false
}

// mask returns the bits of tags; slow when some have no bit; not ok when
// some tag is carried by no instance.
func (x tagIndex) mask(tags map[string]string) (want uint64, slow, ok bool) {
	for k, v := range tags {
		switch bit, found := x.lookup(k, v); {
		case !found:
			return 0, false, false
		case bit == noBit:
			slow = true
		default:
			want |= bit
		}
	}
	return want, slow, true
}
