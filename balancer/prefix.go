package balancer

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// Prefix hashing. A prompt's leading content (Request.Prompt) is cut into
// blocks of PrefixBlockSize bytes; block k's hash covers blocks 0..k, so two
// prompts share the hash of block k exactly when their first k+1 blocks are
// equal. A trailing partial block is not hashed: engines cache whole blocks,
// and the next turn of a conversation extends it anyway.
const (
	// PrefixBlockSize is the size in bytes of one hashed block of a prompt
	// (about 64 tokens of English text).
	PrefixBlockSize = 256
	// MaxPrefixBlocks bounds the blocks hashed per pick: prompts longer than
	// MaxPrefixBlocks × PrefixBlockSize (32 KiB) are matched on their first
	// 32 KiB.
	MaxPrefixBlocks = 128
	// DefaultPrefixIndexEntries is the default capacity of one service's
	// prefix index, in block hashes (WithPrefixIndexSize).
	DefaultPrefixIndexEntries = 1 << 14
)

// prefixWays is the associativity of the index: a block hash lives in one
// of the prefixWays slots of its set.
const prefixWays = 4

// hashBlocks writes the chained hashes of p's whole blocks into out and
// returns how many it wrote. It does not allocate.
func hashBlocks(seed maphash.Seed, p []byte, out *[MaxPrefixBlocks]uint64) int {
	k := min(len(p)/PrefixBlockSize, MaxPrefixBlocks)
	h := uint64(0x243f6a8885a308d3)
	for j := range k {
		// maphash's output is uniform in every bit; multiplying by an odd
		// constant is a bijection that makes the chain depend on the order
		// of the blocks. The low bits (an index set) stay uniform.
		h = (h ^ maphash.Bytes(seed, p[j*PrefixBlockSize:(j+1)*PrefixBlockSize])) * 0x9e3779b97f4a7c15
		out[j] = h
	}
	return k
}

// prefixIndex remembers which instance most recently served each block
// hash of one service: a set-associative table of fixed size, evicting the
// least recently recorded entry of a set. It is approximate by design — a
// lookup racing a record may see either — and lock-free: lookups and
// records are atomic loads and stores, safe for concurrent use.
type prefixIndex struct {
	// entries holds tag<<serialBits | serial; 0 is an empty slot. The tag is
	// the hash's high bits, the set its low bits.
	entries []atomic.Uint64
	stamps  []atomic.Uint32 // the clock when each entry was last recorded
	clock   atomic.Uint32
	mask    uint64 // sets - 1
}

// serialBits is the width of an instance serial in an index entry.
const serialBits = 24

const serialMask = 1<<serialBits - 1

// newPrefixIndex returns an index of at least entries slots (rounded up to
// a power of two sets of prefixWays).
func newPrefixIndex(entries int) *prefixIndex {
	sets := 1
	for sets*prefixWays < entries {
		sets <<= 1
	}
	return &prefixIndex{entries: make([]atomic.Uint64, sets*prefixWays),
		stamps: make([]atomic.Uint32, sets*prefixWays), mask: uint64(sets - 1)}
}

// lookup returns the serial of the instance that last served block hash h,
// or 0.
func (x *prefixIndex) lookup(h uint64) uint32 {
	base := int(h&x.mask) * prefixWays
	tag := h >> serialBits
	for w := range prefixWays {
		if e := x.entries[base+w].Load(); e != 0 && e>>serialBits == tag {
			return uint32(e & serialMask)
		}
	}
	return 0
}

// longest returns the serial of the instance that last served the
// longest prefix of hs the index knows, and that prefix's length in
// blocks; 0, 0 when it does not know hs[0]. A record stores every block of
// a prompt, so the known blocks of a prompt are a prefix of hs (but for
// evictions, which make the answer shorter or longer by a little): a binary
// search finds its end in log2(len(hs)) lookups.
func (x *prefixIndex) longest(hs []uint64) (uint32, int) {
	serial := x.lookup(hs[0])
	if serial == 0 {
		return 0, 0
	}
	depth := 1
	for lo, hi := 1, len(hs); lo < hi; {
		mid := int(uint(lo+hi) >> 1)
		if s := x.lookup(hs[mid]); s != 0 {
			serial, depth, lo = s, mid+1, mid+1
		} else {
			hi = mid
		}
	}
	return serial, depth
}

// record notes that the instance with serial s (never 0) serves the
// blocks with hashes hs. An entry that already says so is left alone but
// for its stamp, refreshed only once it is touchEvery records old: a
// conversation's every turn re-records its earlier blocks, and rewriting
// them all would cost a store (and a shared cache line) each.
func (x *prefixIndex) record(hs []uint64, s uint32) {
	now := x.clock.Add(1)
next:
	for _, h := range hs {
		base := int(h&x.mask) * prefixWays
		tag := h >> serialBits
		want := tag<<serialBits | uint64(s&serialMask)
		victim, oldest := base, uint32(0)
		for w := range prefixWays {
			i := base + w
			e := x.entries[i].Load()
			if e == want {
				if now-x.stamps[i].Load() > touchEvery {
					x.stamps[i].Store(now)
				}
				continue next
			}
			if e == 0 || e>>serialBits == tag {
				victim = i
				break
			}
			if age := now - x.stamps[i].Load(); age > oldest {
				victim, oldest = i, age
			}
		}
		x.entries[victim].Store(want)
		x.stamps[victim].Store(now)
	}
}

// touchEvery is how stale (in records) the stamp of an entry recorded again
// may grow before it is refreshed: least-recently-used order within a set
// is kept to within touchEvery records, far less than the records it takes
// to turn a set over.
const touchEvery = 16

// prefixTable holds one prefix index per service, created on the first
// build of a set whose policy scores prefixes and kept across rebuilds while
// the service is in the pool.
type prefixTable struct {
	mu      sync.Mutex
	entries int
	byKey   map[string]*prefixIndex
}

// get returns the index of service key, creating it.
func (t *prefixTable) get(key string) *prefixIndex {
	t.mu.Lock()
	defer t.mu.Unlock()
	x := t.byKey[key]
	if x == nil {
		x = newPrefixIndex(t.entries)
		t.byKey[key] = x
	}
	return x
}

// prune drops the indexes of services for which live is false.
func (t *prefixTable) prune(live func(key string) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.byKey {
		if !live(k) {
			delete(t.byKey, k)
		}
	}
}
