// Package discovery holds the live pool of model instances that modelgate
// routes to.
//
// A Source (Nacos, a static file) feeds a Pool with the full instance list of
// each service it watches. The Pool keeps one immutable Snapshot per version
// and swaps it atomically, so readers on the request path never lock; writers
// are serialised. Each Snapshot carries a channel that is closed when a newer
// one replaces it, which is how the balancer and router learn of changes.
//
// Instance metadata follows the contract in the README: "model", "version",
// "base_path", "scheme", "max_concurrency", "drain" and "cred_ref" are read
// into typed fields; every other key is a tag.
package discovery
