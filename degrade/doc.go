// Package degrade decides how a route degrades when its model instances run
// short, and enforces it: a Controller turns each route's health signals
// into a tier, and a Limiter caps a route's concurrency with a bounded
// priority queue. The reply cache is in degrade/replycache and consumer
// quotas in degrade/quota.
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
// # Use from a router
//
// Per request: Controller.Tier (an atomic load) decides shedding, the
// Limiter and the cache; after the reply, Window.Record feeds the route's
// error ratio and TTFT. Once a second, Controller.Run pulls Signals from a
// SignalSource that the router builds from its balancer's instance stats and
// Window.Snapshot. The OnChange hook moves the modelgate_degrade_tier gauge
// and, if the router prefers, the Limiter's cap (SetCap) with the tier.
//
// The package imports neither fasthttp nor the Nacos SDK, keeps no global
// state, and logs (zerolog, injected; none by default) only tier changes and
// pins.
package degrade
