package replycache

import (
	"context"
	"time"
)

// Entry is one stored reply. Only complete replies with status 200 are
// stored: the router stores a reply after its last byte was relayed without
// error, never a partial stream or an error. Body is shared by every reader
// and must not be modified once stored; the router copies it out of the
// fasthttp response before Set, since that buffer is reused.
type Entry struct {
	Status      int
	ContentType string
	Body        []byte
	// Stream says Body holds the SSE events of a streamed reply, as the
	// upstream sent them, usage chunk and "data: [DONE]" included; the
	// router replays them as SSE with the same usage stripping as a live
	// stream.
	Stream bool
	// Stored is when the reply was stored; freshness and staleness count
	// from it. Set drops an entry without it.
	Stored time.Time
}

// size is what an entry counts against a store's byte bound: key, body,
// content type, and the bookkeeping around them.
func (e *Entry) size() int64 {
	return int64(32 + len(e.Body) + len(e.ContentType) + entryOverhead)
}

// entryOverhead approximates the memory of one entry beyond its bytes: the
// node, the map slot, the Entry header.
const entryOverhead = 192

// Store keeps replies by key. The in-process LRU is the default; a shared
// store (Redis) can take its place when several gateways run. A Store
// treats its own failures as misses (and reports them itself), since the
// cache is never the only way to answer. Implementations must be safe for
// concurrent use.
type Store interface {
	// Get returns the entry stored under key, whether it is still fresh at
	// now, and whether there is one: stale entries are returned too (the
	// caller decides whether one may serve), expired ones are not.
	Get(ctx context.Context, key [32]byte, now time.Time) (e Entry, fresh, ok bool)
	// Set stores e under key, replacing any entry there. The store owns
	// e.Body from then on.
	Set(ctx context.Context, key [32]byte, e Entry)
}
