// Package degrade decides how a route degrades when its model instances run
// short, and enforces it: a Gate admits each request and learns from its
// outcome; beneath it a Controller turns each route's health signals into a
// tier, and a Limiter caps a service's concurrency with a bounded priority
// queue. The reply cache is in degrade/replycache and consumer quotas in
// degrade/quota.
//
// # Tiers
//
// TierNormal serves everything; TierShed turns away Sheddable routes;
// TierCap also caps concurrency (Limiter); TierCache also answers from the
// reply cache, stale entries included. A Controller computes each route's
// tier once a second from Signals (ready and breaker-open fractions,
// in-flight against capacity, error ratio and TTFT p95 from a Window),
// against Thresholds. A tier is entered once its condition has held for
// EnterAfter (3s) — straight to the highest tier that qualifies — and left
// once the signals have stayed at or below a lower tier for ExitAfter (15s).
// An admin can Pin a tier with a TTL.
//
// # Admission
//
// Gate puts it all together — tiers, per-service queues, per-route signal
// windows, the reply cache (degrade/replycache) and consumer quotas
// (degrade/quota) — behind two calls per request: Gate.Admit and
// Ticket.Settle. `go doc degrade.Gate` states the protocol and the policy.
//
// The package imports neither fasthttp nor the Nacos SDK, keeps no global
// state, and logs (zerolog, injected; none by default) only tier changes and
// pins.
package degrade
