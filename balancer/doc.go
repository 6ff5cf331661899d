// Package balancer picks the model instance that serves a request.
//
// A Picker returns a Picked; the caller reports the outcome of the upstream
// attempt through Picked.Done, which is the only input to the balancer's
// latency averages, failure counts and circuit breakers. Pick reads
// immutable snapshots and never blocks.
//
// Balancer is the Picker modelgate uses. For each Route it precomputes,
// whenever the pool or the routes change, the usable instances that carry
// the route's required tags, grouped by version for the route's split, with
// the preferred-tag subset of each group apart. A pick then:
//
//  1. chooses a version by the split (by a hash of Request.StickyKey when
//     set), moving the share of a version with nothing available to the
//     others;
//  2. within it, asks the Policy (p2c by default; wrr, random) for a
//     preferred instance if one is available, else any;
//  3. admits the choice: its breaker must be closed, or half-open with a
//     free probe slot, and it must be below its max_concurrency;
//  4. failing all that, allows full instances; and failing that, picks the
//     least bad instance whose breaker is open (panic mode, counted).
//
// A route may carry a Canary overlay (SetCanary): a share of its traffic
// goes to one version first, the rest divides by the split as before, and
// a sticky key's side of the overlay only changes when the share crosses
// its hash, so ramping the share never moves a key back.
//
// "Available" always also means not in Request.Exclude and carrying
// Request.Tags. Requests whose Route is unknown fall back to a plain pick
// over Request.Service, so a library user can pick without routes.
//
// Each instance has a sony/gobreaker circuit breaker, mirrored into atomics
// so that Pick does not lock; its open timeout runs on an injectable clock.
// Client cancellations and 4xx other than 429 are not failures.
//
// The package imports neither fasthttp nor the Nacos SDK: a gateway with
// another registry can use it alone over a discovery.Pool.
package balancer
