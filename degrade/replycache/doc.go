// Package replycache stores complete model replies by a key derived from
// the request, for the gateway's cache tier and for fresh hits on
// deterministic requests.
//
// Key hashes the request's canonical form, so requests that differ only in
// key order, whitespace, escapes or fields that do not change the output
// (user, metadata, stream_options, store) share an entry. Cacheable (or a
// configured Rules) decides which requests may be answered from a fresh
// entry; stale entries (past FreshTTL, before StaleTTL) serve only in
// TierCache or when every upstream attempt failed — the router's decision,
// from the fresh flag Get returns.
//
// # Use from a router
//
// Before forwarding: key, ok := Key(scope, api, body) on the body as the client
// sent it (before model rewrite and stream_options injection). If ok and
// (Cacheable(api, body) or the tier is TierCache), Get: serve a fresh hit
// when Cacheable, or any hit in TierCache, with X-Modelgate-Degraded: cache;
// keep a stale hit in hand for stale-if-error. After a complete 200 reply
// with ok: Set a copy of the body with Stored set. Only complete 200 replies
// are stored; the Store does not check.
//
// Store is the interface a shared (Redis) store implements; LRU is the
// in-process default. The package keeps no global state.
package replycache
