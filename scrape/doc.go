// Package scrape reads each model instance's own metrics endpoint in the
// background and feeds the engine's queue to the balancer, so that the
// engine-aware policy (balancer/engine) sees load that modelgate did not
// send as well as its own.
//
// An instance is scraped when its metadata names its engine:
// engine=vllm|sglang|llamacpp, and optionally metrics_path (default
// /metrics) on the instance's own scheme, host and port. The scraper reads
// the engine's waiting and running request counts, KV-cache usage and
// prefix-cache counters (see Engines) every Interval (default 500 ms) with
// one HTTP client, at most Concurrency scrapes at a time, each bounded by
// Timeout. A scrape that fails — endpoint down, slow past Timeout, a body
// that is not Prometheus text or lacks the engine's queue metrics — clears
// the instance's engine load in the balancer at once, so that it falls
// back to modelgate's in-flight counts, and counts the failure by reason.
// Nothing on the request path waits for a scrape.
package scrape
