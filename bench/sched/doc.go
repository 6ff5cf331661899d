// Package sched is `make bench-sched`: where a request lands, measured on
// real llama.cpp servers. A multi-turn workload (conversations, each a
// distinct ~1,500-token document followed by several turns, four at a time)
// and a unique-prompt workload each run through modelgate with p2c, through
// modelgate with policy engine, and as an "affinity oracle" (the client
// sends conversation k straight to server k mod n), on two and on three
// llama-servers restarted before every leg (cold caches), the legs
// interleaved. Each leg reports TTFT p50/p95, wall time and the engines'
// own prefix-cache hit ratio (llamacpp:prompt_tokens_cached_total over
// cached + processed prompt tokens, from their /metrics); the run is written
// into BENCHMARKS.md. The unique workload's verdict is the median over
// rounds of engine's wall time over p2c's within a round, the two legs run
// back to back (first in turn), so that the machine's drifting load cancels.
//
// With -mock the same legs run on the mock's engine economics
// (internal/mockllm: slots, prefill per uncached token, decode per token,
// prefix cache, vLLM-format metrics) in under two minutes, written nowhere.
//
// The test is behind the build tag benchsched, out of `make test`; the
// router's TestEnginePolicyKeepsConversationsOnTheirCache is its fast form
// on mock engines.
package sched
