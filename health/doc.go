// Package health probes each model instance's health endpoint in the
// background and reports the outcomes to the balancer
// (balancer.Balancer.ReportHealth), which takes an instance out of rotation
// after a few failures in a row and back once it passes.
//
// An instance is probed when its metadata says where: health_path=/path, or
// an engine known to serve /health (engine=vllm, sglang or llamacpp).
// health_path=none turns probing off for one instance. A probe is a GET on
// the instance's own scheme, host and port, passed by any 2xx answer within
// Timeout; each is sent on a fresh connection, so that a server's closing of
// idle keep-alive connections never reads as a failure. Every Interval
// (default 2 s) each probed instance gets one probe, at most Concurrency
// (default 16) at a time, each bounded by Timeout (default 1 s), with one
// HTTP client. Nothing on the request path waits for a probe.
package health
