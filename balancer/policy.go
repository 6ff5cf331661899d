package balancer

import (
	"slices"
	"time"

	"github.com/modelgate/modelgate/discovery"
)

// Policy chooses among the instances of one candidate set. Build runs on
// the slow path, once per set whenever the balancer rebuilds its snapshot
// (a pool change or SetRoutes), and may precompute and allocate; the
// Selector it returns is used concurrently by every Pick until the next
// rebuild. Policies live in sub-packages (p2c, wrr, random); p2c is the
// default.
type Policy interface {
	Name() string
	Build(set Candidates) Selector
}

// Selector chooses one candidate for one pick. Select is called
// concurrently and must not block for long nor allocate; it returns an index
// i with set.Available(i), or -1 when no candidate is available. The
// balancer then takes the instance's breaker admission and in-flight slot
// and, if another pick won the race for them, calls Select again.
type Selector interface {
	Select(set Candidates) int
}

// level says which candidates count as available during one pass of a pick.
type level uint8

const (
	levelAny      level = iota // at build time: every candidate
	levelStrict                // the breaker admits and the instance has room
	levelOverflow              // the breaker admits; full instances allowed
	levelPanic                 // every candidate matching the request
)

// Candidates is the view a Selector gets of one candidate set during one
// pick: instances that are usable, carry the route's tags, belong to the
// chosen version and, when some are available, carry the preferred tags. It
// is passed by value so that Pick does not allocate, and is valid only
// during the call it is passed to. Its methods are safe for concurrent use.
type Candidates struct {
	nodes []node
	req   *Request
	env   *env
	want  uint64 // bits of req.Tags in the set's tag index
	level level
	slow  bool // some of req.Tags have no bit: check them one by one
}

// Len returns the number of candidates.
func (c Candidates) Len() int { return len(c.nodes) }

// Available reports whether candidate i may be chosen now: it passes its
// active health checks (Balancer.ReportHealth), it is not in
// Request.Exclude, carries Request.Tags, its breaker admits a request (closed,
// or half-open with a free probe slot) and it is below its max_concurrency.
// When no candidate of a set is available, the balancer asks again allowing
// full instances, and then in panic mode. At Build time every candidate is
// available.
func (c Candidates) Available(i int) bool { return c.available(i) }

func (c *Candidates) available(i int) bool {
	if n := &c.nodes[i]; c.plain() && n.st.brk.closed() {
		return c.availableClosed(n)
	}
	return c.availableAny(i)
}

// plain reports whether this pass is the usual one: strict, for a request
// that excludes nothing and whose tags all have bits. A candidate with a
// closed breaker is then available exactly when availableClosed says so; a
// policy's loop over every candidate may test that inline.
func (c *Candidates) plain() bool {
	return c.level == levelStrict && c.req != nil && len(c.req.Exclude) == 0 && !c.slow
}

// availableClosed is available for n in a plain pass when n's breaker is
// closed.
func (c *Candidates) availableClosed(n *node) bool {
	return !n.st.down.Load() && n.mask&c.want == c.want && !n.full()
}

// availableAny is available for any pass and breaker state.
func (c *Candidates) availableAny(i int) bool {
	n := &c.nodes[i]
	if c.req != nil {
		if n.st.down.Load() {
			return false
		}
		if len(c.req.Exclude) > 0 && slices.Contains(c.req.Exclude, n.id) {
			return false
		}
		if n.mask&c.want != c.want || (c.slow && !n.in.HasTags(c.req.Tags)) {
			return false
		}
	}
	switch c.level {
	case levelStrict:
		return n.st.brk.admits() && !n.full()
	case levelOverflow:
		return n.st.brk.admits()
	}
	return true
}

// Weight returns candidate i's Nacos weight, always > 0.
func (c Candidates) Weight(i int) float64 { return c.nodes[i].weight }

// InFlight returns the number of attempts picked on candidate i and not yet
// reported through Picked.Done.
func (c Candidates) InFlight(i int) int64 { return c.nodes[i].st.inflight.Load() }

// Latency returns candidate i's moving average of time to first token (or
// latency), 0 until its first reported result.
func (c Candidates) Latency(i int) time.Duration { return time.Duration(c.nodes[i].st.ewma.Load()) }

// Instance returns candidate i. It must not be modified.
func (c Candidates) Instance(i int) *discovery.Instance { return c.nodes[i].in }

// Request returns the request being served; nil at Build time.
func (c Candidates) Request() *Request { return c.req }

// Uint64 returns a random number from the balancer's source (see WithRand).
func (c Candidates) Uint64() uint64 { return c.env.rand() }

// Pair samples two distinct available candidates uniformly at random. a is
// -1 when none is available; b is -1 when only a is.
func (c Candidates) Pair() (a, b int) {
	n := len(c.nodes)
	if n == 0 {
		return -1, -1
	}
	r := c.env.rand()
	a = c.firstAvailable(int((r&0xffffffff)*uint64(n)>>32), -1)
	if a < 0 || n == 1 {
		return a, -1
	}
	j := int((r >> 32) * uint64(n-1) >> 32)
	if j >= a {
		j++
	}
	return a, c.firstAvailable(j, a)
}

// firstAvailable returns the first available candidate other than skip at
// or after i, wrapping around; -1 if none.
func (c *Candidates) firstAvailable(i, skip int) int {
	for range len(c.nodes) {
		if i != skip && c.available(i) {
			return i
		}
		if i++; i == len(c.nodes) {
			i = 0
		}
	}
	return -1
}
