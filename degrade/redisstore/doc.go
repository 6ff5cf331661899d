// Package redisstore holds the shared stores of degrade in Redis, for
// several modelgate replicas behind one load balancer: consumer quotas
// (quota.Store) as token buckets updated atomically by a server-side Lua
// script, one round trip per admission, and the reply cache
// (replycache.Store) with TTLs and a bound on entry size.
//
// Redis down or slow (each call has a short timeout) never fails a
// request: the quota store falls back to a per-process bucket, or admits,
// or refuses, by its Fallback policy; the cache store answers a miss. Each
// logs the outage once and its recovery once, and counts the calls that
// fell back.
package redisstore
