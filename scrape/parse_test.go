package scrape

import (
	"math"
	"testing"
)

func TestEngineRead(t *testing.T) {
	for _, tc := range []struct {
		engine, body string
		want         Reading
		bad          bool
	}{
		{"vllm", `# HELP vllm:num_requests_waiting Number of requests waiting.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="qwen"} 3.0
vllm:num_requests_running{engine="0",model_name="qwen"} 2.0
vllm:num_requests_running{engine="1",model_name="qwen"} 1.0
vllm:kv_cache_usage_perc{engine="0",model_name="qwen"} 0.25
vllm:prefix_cache_queries_total{engine="0",model_name="qwen"} 1000
vllm:prefix_cache_hits_total{engine="0",model_name="qwen"} 750
`, Reading{Waiting: 3, Running: 3, KVUsage: 0.25, CacheHitRatio: 0.75, CacheHits: 750, CacheQueries: 1000}, false},
		{"vllm", "vllm:num_requests_waiting 0\nvllm:num_requests_running 0\nvllm:gpu_cache_usage_perc 0.5\n",
			Reading{KVUsage: 0.5, CacheHitRatio: -1, CacheHits: -1, CacheQueries: -1}, false},
		{"sglang", "sglang:num_queue_reqs{name=\"a}b\\\"c\"} 4\nsglang:num_running_reqs 8 1700000000000\nsglang:cache_hit_rate 0.5\n",
			Reading{Waiting: 4, Running: 8, KVUsage: -1, CacheHitRatio: 0.5, CacheHits: -1, CacheQueries: -1}, false},
		{"llamacpp", "llamacpp:prompt_tokens_total 300\nllamacpp:prompt_tokens_cached_total 900\nllamacpp:requests_processing 1\nllamacpp:requests_deferred 2\n",
			Reading{Waiting: 2, Running: 1, KVUsage: -1, CacheHitRatio: 0.75, CacheHits: 900, CacheQueries: 1200}, false},
		{"vllm", "vllm:num_requests_waiting 1\n", Reading{}, true},                                  // no running
		{"vllm", "<html>oops</html>\n", Reading{}, true},                                            // not Prometheus text
		{"vllm", "vllm:num_requests_waiting one\n", Reading{}, true},                                // bad value
		{"vllm", "vllm:num_requests_waiting{a=\"b\" 1\n", Reading{}, true},                          // open labels
		{"vllm", "vllm:num_requests_waiting1\n", Reading{}, true},                                   // no value
		{"llamacpp", "vllm:num_requests_waiting 1\nvllm:num_requests_running 1\n", Reading{}, true}, // another engine
	} {
		e := Engines[tc.engine]
		got, err := e.read([]byte(tc.body))
		if tc.bad {
			if err == nil {
				t.Errorf("%s %q: no error, read %+v", tc.engine, tc.body, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %q: %v", tc.engine, tc.body, err)
			continue
		}
		if !near(got, tc.want) {
			t.Errorf("%s: read %+v, want %+v", tc.engine, got, tc.want)
		}
	}
}

func near(a, b Reading) bool {
	for _, p := range [][2]float64{{a.Waiting, b.Waiting}, {a.Running, b.Running}, {a.KVUsage, b.KVUsage},
		{a.CacheHitRatio, b.CacheHitRatio}, {a.CacheHits, b.CacheHits}, {a.CacheQueries, b.CacheQueries}} {
		if math.Abs(p[0]-p[1]) > 1e-9 {
			return false
		}
	}
	return true
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("a 1\nb{c=\"d\"} 2 3\n# x\n"))
	f.Add([]byte("a{b=\"\\\"}\"} NaN\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = parse(body, func(name []byte, v float64) {
			if len(name) == 0 {
				t.Fatal("empty name")
			}
		})
	})
}
