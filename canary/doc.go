// Package canary ramps a new model version through a route's traffic and
// judges it on live traffic: the canary autopilot.
//
// A Controller runs one rollout per route. A rollout (Spec) moves the
// canary version's share through its steps (1, 5, 25, 50, 100 % by
// default) as an overlay on the route's split (balancer.Balancer.SetCanary).
// The router reports every finished exchange of the route's canary and
// baseline versions through Observe. At each step the canary is compared
// with the baseline over the same window, once both have MinRequests: error
// ratio (5xx, timeouts, transport errors, streams broken midway), time to
// first token p95, output tokens per second, and the share of replies with
// no output tokens or cut by finish_reason "length" at a suspiciously short
// length. A breach sets the canary's share to 0 at once and aborts the
// rollout; a step that passes after StepAfter moves to the next; passing
// the last step below 100 % promotes the canary (its share becomes and
// stays 100 %). Every verdict
// carries its numbers, in the event log, the logger and the metrics.
//
// Several replicas agree through a shared document (Sync, kept in a Nacos
// Config entry by the daemon): each judges its own traffic, publishes its
// steps and verdicts, and follows what the others published; an abort
// published by one aborts all.
//
// Time comes from an injectable clock and Tick, so tests step through a
// rollout without sleeping. Observe is safe for concurrent use and cheap: a
// map lookup for routes without a rollout.
package canary
