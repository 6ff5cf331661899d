package mockllm

import (
	"container/list"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/internal/reqjson"
)

// EngineConfig gives the mock a model server's economics, so that where a
// request lands matters as it does with a real engine: a request waits for
// one of Slots, then pays PrefillPerToken for each prompt token not already
// in the instance's prefix cache before its first token, then
// DecodePerToken for each output token. The prefix cache is an LRU of
// 16-token blocks of the prompt (a mock token is 4 bytes of the raw
// messages or prompt JSON), CacheTokens in all. GET /metrics reports the
// queue and the cache in vLLM's format.
type EngineConfig struct {
	PrefillPerToken time.Duration // zero means none
	DecodePerToken  time.Duration // zero means none
	Slots           int           // requests processed at once; zero means 4
	CacheTokens     int           // prefix cache capacity; zero means 32768
}

const (
	mockTokenBytes = 4
	cacheBlockToks = 16
	cacheBlock     = cacheBlockToks * mockTokenBytes
)

// engine is one mock instance's slots and prefix cache. It lives as long
// as the Server: Set changes the costs, not the cache.
type engine struct {
	slots            chan struct{}
	waiting, running atomic.Int64
	hits, queries    atomic.Int64 // prompt tokens
	seed             maphash.Seed

	mu     sync.Mutex
	lru    *list.List               // of uint64 block hashes, most recent first
	blocks map[uint64]*list.Element // guarded by mu
	limit  int                      // blocks
}

func newEngine(c *EngineConfig) *engine {
	slots, cache := 4, 32768
	if c != nil && c.Slots > 0 {
		slots = c.Slots
	}
	if c != nil && c.CacheTokens > 0 {
		cache = c.CacheTokens
	}
	return &engine{slots: make(chan struct{}, slots), seed: maphash.MakeSeed(), lru: list.New(),
		blocks: map[uint64]*list.Element{}, limit: max(cache/cacheBlockToks, 1)}
}

// acquire waits for a slot; false if closing closed first.
func (e *engine) acquire(closing <-chan struct{}) bool {
	e.waiting.Add(1)
	defer e.waiting.Add(-1)
	select {
	case e.slots <- struct{}{}:
		e.running.Add(1)
		return true
	case <-closing:
		return false
	}
}

func (e *engine) release() {
	e.running.Add(-1)
	<-e.slots
}

// prefill looks prompt up in the prefix cache, caches it, and returns its
// tokens not found there.
func (e *engine) prefill(prompt []byte) int {
	tokens := (len(prompt) + mockTokenBytes - 1) / mockTokenBytes
	n := len(prompt) / cacheBlock
	e.mu.Lock()
	defer e.mu.Unlock()
	h, cached, missed := uint64(0), 0, false
	for i := range n {
		h = maphash.Bytes(e.seed, prompt[i*cacheBlock:(i+1)*cacheBlock]) ^ (h * 0x9e3779b97f4a7c15)
		if el, ok := e.blocks[h]; ok {
			e.lru.MoveToFront(el)
			if !missed {
				cached++
			}
			continue
		}
		missed = true
		e.blocks[h] = e.lru.PushFront(h)
		for e.lru.Len() > e.limit {
			old := e.lru.Back()
			delete(e.blocks, old.Value.(uint64))
			e.lru.Remove(old)
		}
	}
	e.queries.Add(int64(tokens))
	e.hits.Add(int64(cached * cacheBlockToks))
	return tokens - cached*cacheBlockToks
}

// promptOf returns the raw messages or prompt of a model request body.
func promptOf(body []byte) []byte {
	var r reqjson.Request
	if reqjson.Parse(body, 0, &r) != nil || r.PromptSpan.End <= r.PromptSpan.Start {
		return nil
	}
	return body[r.PromptSpan.Start:r.PromptSpan.End]
}

// serveMetrics answers GET /metrics in vLLM's format.
func (s *Server) serveMetrics(ctx *fasthttp.RequestCtx) {
	e := s.engine
	e.mu.Lock()
	used := e.lru.Len()
	e.mu.Unlock()
	name := s.state.Load().cfg.Name
	ctx.SetContentType("text/plain; version=0.0.4")
	fmt.Fprintf(ctx, "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"+
		"# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=%q} %d\n"+
		"# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name=%q} %d\n"+
		"# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc{model_name=%q} %g\n"+
		"# TYPE vllm:prefix_cache_queries_total counter\nvllm:prefix_cache_queries_total{model_name=%q} %d\n"+
		"# TYPE vllm:prefix_cache_hits_total counter\nvllm:prefix_cache_hits_total{model_name=%q} %d\n",
		name, e.waiting.Load(), name, e.running.Load(), name, float64(used)/float64(e.limit),
		name, e.queries.Load(), name, e.hits.Load())
}

// EngineStats are the mock engine's counters: its queue now and the prompt
// tokens looked up in and served from its prefix cache so far.
type EngineStats struct {
	Waiting, Running int64
	PromptTokens     int64
	CachedTokens     int64
}

// Engine returns the mock engine's counters.
func (s *Server) Engine() EngineStats {
	e := s.engine
	return EngineStats{Waiting: e.waiting.Load(), Running: e.running.Load(), PromptTokens: e.queries.Load(), CachedTokens: e.hits.Load()}
}
