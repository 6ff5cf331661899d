// Package replycache stores complete model replies by a key derived from
// the request, for the gateway's cache tier and for fresh hits on
// deterministic requests.
//
// Key hashes the request's canonical form, so requests that differ only in
// key order, whitespace, escapes or fields that do not change the output
// (user, metadata, stream_options, store) share an entry. Cacheable (or a
// configured Rules) decides which requests may be answered from a fresh
// entry; stale entries (past FreshTTL, before StaleTTL) serve only in
// TierCache or when every upstream attempt failed — the degrade.Gate's decision,
// from the fresh flag Get returns.
//
// Store is the interface a shared (Redis) store implements; LRU is the
// in-process default. The package keeps no global state.
package replycache
