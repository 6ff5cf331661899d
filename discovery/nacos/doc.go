// Package nacos feeds a discovery.Pool from a Nacos server.
//
// A Watcher lists the services of its configured groups, subscribes to each,
// and hands every pushed instance list to the pool. Pushes are known to be
// lost now and then, so every subscribed service is also re-read on an
// interval and the difference applied. An empty instance list (every instance
// gone, or Nacos restarting) is handled by an explicit policy: keep the last
// good list for a grace period, or apply it at once.
//
// The Watcher talks to Nacos through the small Client interface; Dial returns
// the implementation over nacos-sdk-go. Create one Client per process and
// share it: the SDK leaks when clients are created repeatedly.
package nacos
