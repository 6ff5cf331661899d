// Package leaktest holds the goleak options modelgate's tests share: the
// goroutines that dependencies leave behind by design, which are not leaks
// of modelgate's.
package leaktest

import "go.uber.org/goleak"

// Options are passed to goleak.VerifyTestMain or goleak.VerifyNone.
func Options() []goleak.Option {
	return []goleak.Option{
		// nacos-sdk-go v2.3.5 keeps its UDP push receiver and its log-file
		// roller running after CloseClient.
		goleak.IgnoreAnyFunction("github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client/naming_http.(*PushReceiver).handleClient"),
		goleak.IgnoreAnyFunction("gopkg.in/natefinch/lumberjack%2ev2.(*Logger).millRun"),
		// fasthttp runs one process-wide clock for the Date header, lets a
		// server's worker-pool cleaner finish its sleep after Serve returns,
		// and stops a HostClient's idle-connection cleaner only after its
		// idle period.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*Client).mCleaner"),
		// fasthttp's default dialer caches DNS answers with one cleaner.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*TCPDialer).tcpAddrsClean"),
	}
}
