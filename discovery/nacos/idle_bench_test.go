package nacos

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/nacostest"
	"github.com/modelgate/modelgate/internal/testkit"
)

// BenchmarkIdleCalls500Services measures what one watcher costs Nacos when
// nothing changes: 500 services of one instance each in the real Nacos,
// the watcher at its defaults, HTTP calls counted over an idle minute.
//
//	go test -run '^$' -bench IdleCalls -benchtime 1x ./discovery/nacos/
func BenchmarkIdleCalls500Services(b *testing.B) {
	addr := nacostest.Addr(b)
	group := testkit.UniqueGroup("BENCHIDLE")
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port Nacos's TCP health check finds open
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	const services = 500
	for i := range services {
		nacostest.RegisterPersistent(b, addr, group, fmt.Sprintf("svc%03d", i), "127.0.0.1", port, nil)
	}
	defer func() {
		c := &http.Client{Timeout: 5 * time.Second}
		for i := range services {
			q := url.Values{"serviceName": {fmt.Sprintf("svc%03d", i)}, "groupName": {group}, "ip": {"127.0.0.1"},
				"port": {strconv.Itoa(port)}, "ephemeral": {"false"}}
			req, _ := http.NewRequest(http.MethodDelete, "http://"+addr+"/nacos/v3/admin/ns/instance?"+q.Encode(), strings.NewReader(""))
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		c.CloseIdleConnections()
	}()
	for range b.N {
		dir := b.TempDir()
		client, err := Dial(ClientConfig{Servers: []string{addr}, CacheDir: dir + "/c", LogDir: dir + "/l"})
		if err != nil {
			b.Fatal(err)
		}
		w, err := NewWatcher(client, Settings{Groups: []string{group}})
		if err != nil {
			b.Fatal(err)
		}
		pool, stop := runBench(w)
		begin := time.Now()
		if !testkit.Await(2*time.Minute, 50*time.Millisecond, func() bool { return len(pool.Snapshot().Services()) >= services }) {
			b.Fatalf("only %d services after 2 minutes", len(pool.Snapshot().Services()))
		}
		full := time.Since(begin)
		time.Sleep(5 * time.Second) // let the start-up reads settle
		c0, t0 := client.Calls(), time.Now()
		time.Sleep(60 * time.Second) // the idle window measured
		rate := float64(client.Calls()-c0) / time.Since(t0).Seconds()
		stop()
		client.Close()
		b.ReportMetric(full.Seconds(), "s-to-full-pool")
		b.ReportMetric(rate, "nacos-http-calls/s-idle")
	}
}

func runBench(w *Watcher) (*discovery.Pool, func()) {
	pool := discovery.NewPool()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx, pool); close(done) }()
	return pool, func() { cancel(); <-done }
}
