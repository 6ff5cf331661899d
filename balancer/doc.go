// Package balancer picks the model instance that serves a request.
//
// A Picker returns a Picked; the caller reports the outcome of the upstream
// attempt through Picked.Done, which is the only input to the balancer's
// health and latency statistics. Pick reads immutable pool snapshots and
// never blocks.
//
// The package imports neither fasthttp nor the Nacos SDK: a gateway with
// another registry can use it alone over a discovery.Pool.
package balancer
