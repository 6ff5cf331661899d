package balancer

import (
	"hash/maphash"
	"testing"
)

func chain(seed maphash.Seed, p []byte) []uint64 {
	var hs [MaxPrefixBlocks]uint64
	return append([]uint64(nil), hs[:hashBlocks(seed, p, &hs)]...)
}

func TestPrefixIndexLongest(t *testing.T) {
	seed := maphash.MakeSeed()
	doc := make([]byte, 10*PrefixBlockSize)
	for i := range doc {
		doc[i] = byte('a' + i%23)
	}
	other := append([]byte(nil), doc...)
	other[6*PrefixBlockSize+3] ^= 1 // differs from block 6 on
	full, short, fork := chain(seed, doc), chain(seed, doc[:4*PrefixBlockSize]), chain(seed, other)
	for i := range 6 {
		if fork[i] != full[i] {
			t.Fatalf("block %d of two prompts equal up to block 6 hashes differently", i)
		}
	}
	if fork[6] == full[6] {
		t.Fatal("block 6 of two prompts that differ there hashes the same")
	}
	x := newPrefixIndex(1 << 10)
	if s, d := x.longest(full); s != 0 || d != 0 {
		t.Errorf("empty index: longest = %d, %d", s, d)
	}
	x.record(full, 1)
	x.record(short, 2) // a later prompt sharing the first 4 blocks went to 2
	for _, tc := range []struct {
		name   string
		hs     []uint64
		serial uint32
		depth  int
	}{{"the whole prompt", full, 1, 10}, {"its first 4 blocks", short, 2, 4},
		{"a prompt forking at block 6", fork, 1, 6}, {"its first block", full[:1], 2, 1}} {
		if s, d := x.longest(tc.hs); s != tc.serial || d != tc.depth {
			t.Errorf("%s: longest = serial %d, %d blocks; want %d, %d", tc.name, s, d, tc.serial, tc.depth)
		}
	}
}

// Recording again what an entry already says refreshes its recency (now
// and then, not on every record): it outlives entries recorded once.
func TestPrefixIndexRecordAgainKeepsEntry(t *testing.T) {
	x := newPrefixIndex(prefixWays) // one set
	hot, cold := []uint64{1 << 40}, []uint64{2 << 40, 3 << 40, 4 << 40}
	x.record(hot, 7)
	for _, h := range cold {
		x.record([]uint64{h}, 8)
	}
	for range 3 * touchEvery {
		x.record(hot, 7)
	}
	x.record([]uint64{5 << 40}, 9) // evicts the least recently recorded
	if x.lookup(hot[0]) != 7 {
		t.Error("the entry recorded again and again was evicted")
	}
	if x.lookup(cold[0]) != 0 {
		t.Error("the oldest entry recorded once survived; want it evicted")
	}
	if x.lookup(5<<40) != 9 {
		t.Error("the new entry is missing")
	}
}
