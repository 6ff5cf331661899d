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
// into BENCHMARKS.md.
//
// The test is behind the build tag benchsched, out of `make test`; the
// router's TestEnginePolicyKeepsConversationsOnTheirCache is its fast form
// on mock engines.
package sched
