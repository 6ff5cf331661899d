package scrape

// Engine names the metrics of one engine's endpoint. Each name may have
// alternatives (older releases); the values of every series of a name
// (labels aside) are summed.
type Engine struct {
	Name    string
	Waiting []string // requests queued, not yet started
	Running []string // requests being processed
	KVUsage []string // KV-cache usage, 0..1
	// CacheHits and CacheQueries are prefix-cache counters (tokens) whose
	// ratio is the cache-hit ratio; CacheMisses, when set, counts queries
	// that missed instead (queries = hits + misses).
	CacheHits, CacheQueries, CacheMisses []string
	// CacheHitRate is a gauge of the ratio itself, for engines that export
	// no counters.
	CacheHitRate []string
}

// Engines are the engines the scraper knows, by metadata engine=NAME.
var Engines = map[string]Engine{
	"vllm": {
		Name:         "vllm",
		Waiting:      []string{"vllm:num_requests_waiting"},
		Running:      []string{"vllm:num_requests_running"},
		KVUsage:      []string{"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"},
		CacheHits:    []string{"vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total"},
		CacheQueries: []string{"vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total"},
	},
	"sglang": {
		Name:         "sglang",
		Waiting:      []string{"sglang:num_queue_reqs"},
		Running:      []string{"sglang:num_running_reqs"},
		KVUsage:      []string{"sglang:token_usage"},
		CacheHitRate: []string{"sglang:cache_hit_rate"},
	},
	"llamacpp": {
		Name:    "llamacpp",
		Waiting: []string{"llamacpp:requests_deferred"},
		Running: []string{"llamacpp:requests_processing"},
		KVUsage: []string{"llamacpp:kv_cache_usage_ratio"},
		// prompt_tokens_total counts the prompt tokens processed,
		// excluding those reused from the cache.
		CacheHits:   []string{"llamacpp:prompt_tokens_cached_total"},
		CacheMisses: []string{"llamacpp:prompt_tokens_total"},
	},
}

// Reading is what one scrape of an engine found.
type Reading struct {
	Waiting, Running float64
	KVUsage          float64 // -1 if not exported
	// CacheHitRatio is hits/queries of the prefix cache since the engine
	// started, -1 if unknown (no counters, or no queries yet).
	CacheHitRatio float64
	CacheHits     float64 // tokens served from the prefix cache, -1 if unknown
	CacheQueries  float64 // prompt tokens looked up, -1 if unknown
}

// errNoQueue is Prometheus text without the engine's queue metrics.
type errNoQueue struct{ engine string }

func (e errNoQueue) Error() string { return "scrape: no " + e.engine + " queue metrics" }

// read parses body as e's metrics endpoint.
func (e *Engine) read(body []byte) (Reading, error) {
	var waiting, running, kv, hits, queries, misses, rate sum
	err := parse(body, func(name []byte, v float64) {
		for _, m := range []struct {
			names []string
			into  *sum
		}{{e.Waiting, &waiting}, {e.Running, &running}, {e.KVUsage, &kv}, {e.CacheHits, &hits},
			{e.CacheQueries, &queries}, {e.CacheMisses, &misses}, {e.CacheHitRate, &rate}} {
			if idx := indexOf(m.names, name); idx >= 0 {
				m.into.add(idx, v)
			}
		}
	})
	if err != nil {
		return Reading{}, err
	}
	if !waiting.seen || !running.seen {
		return Reading{}, errNoQueue{e.Name}
	}
	r := Reading{Waiting: waiting.value(), Running: running.value(), KVUsage: -1, CacheHitRatio: -1, CacheHits: -1, CacheQueries: -1}
	if kv.seen {
		r.KVUsage = kv.value()
	}
	if hits.seen && (queries.seen || misses.seen) {
		r.CacheHits, r.CacheQueries = hits.value(), queries.value()
		if misses.seen {
			r.CacheQueries = hits.value() + misses.value()
		}
		if r.CacheQueries > 0 {
			r.CacheHitRatio = r.CacheHits / r.CacheQueries
		}
	} else if rate.seen {
		r.CacheHitRatio = rate.value()
	}
	return r, nil
}

// sum adds the series of the first alternative name seen.
type sum struct {
	seen bool
	alt  int
	v    float64
}

func (s *sum) add(alt int, v float64) {
	switch {
	case !s.seen || alt < s.alt:
		s.seen, s.alt, s.v = true, alt, v
	case alt == s.alt:
		s.v += v
	}
}

func (s *sum) value() float64 { return s.v }

func indexOf(names []string, name []byte) int {
	for i, n := range names {
		if n == string(name) {
			return i
		}
	}
	return -1
}
