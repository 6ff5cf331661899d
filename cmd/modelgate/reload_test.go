package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/discovery/nacos"
	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/nacostest"
	"github.com/modelgate/modelgate/internal/testkit"
)

// startFromFile runs a daemon from a config file, as `modelgate -config`
// does, checking the file every few milliseconds.
func startFromFile(t *testing.T, path string) *testDaemon {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0"
	d, stop := runDaemon(t, cfg, path, raw)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	return d
}

// write replaces the file at path with content atomically (a new file
// renamed over it), so that the daemon's file watcher never reads it half
// written: an in-place write can be seen truncated, which counts one more
// failed reload than the test made.
func write(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}, within time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(within):
		t.Fatalf("%s: not within %v", what, within)
	}
}

// streamAll runs n streaming chats at once and reports, for each, whether
// it ended properly; started is closed when every stream has its first chunk.
func streamAll(c openai.Client, model string, n int, started chan<- struct{}) []error {
	errs := make([]error, n)
	var wg, first sync.WaitGroup
	first.Add(n)
	for i := range n {
		wg.Go(func() {
			s := c.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
				Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
			got := 0
			for s.Next() {
				if got++; got == 1 {
					first.Done()
				}
			}
			if got == 0 {
				first.Done()
			}
			errs[i] = s.Err()
			if errs[i] == nil && got < 10 {
				errs[i] = errShort(got)
			}
		})
	}
	go func() { first.Wait(); close(started) }()
	wg.Wait()
	return errs
}

type errShort int

func (e errShort) Error() string {
	return "stream cut after " + string(rune('0'+int(e)%10)) + " chunks"
}

func TestReloadAddsRouteWithoutCuttingStreams(t *testing.T) {
	m := startMock(t, "m", mockllm.Config{StreamChunks: 20, ReplyWords: 20, ChunkGap: 25 * time.Millisecond})
	dir := t.TempDir()
	pool := filepath.Join(dir, "pool.yaml")
	write(t, pool, "instances:\n  - {service: qwen, addr: '"+m.Addr()+"'}\n")
	path := filepath.Join(dir, "modelgate.yaml")
	base := "discovery: {static: " + pool + "}\nroutes:\n  - {model: a, service: qwen}\n"
	write(t, path, base)
	d := startFromFile(t, path)
	c := d.client()

	started := make(chan struct{})
	var errs []error
	done := make(chan struct{})
	go func() { errs = streamAll(c, "a", 5, started); close(done) }()
	waitClosed(t, started, 5*time.Second, "streams started")

	applied, _ := d.cfgState.changed()
	write(t, path, base+"  - {model: b, service: qwen}\n")
	waitClosed(t, applied, 5*time.Second, "reload applied")
	if _, err := chat(context.Background(), c, "b"); err != nil {
		t.Fatalf("new route not served: %v", err)
	}

	_, tried := d.cfgState.changed()
	write(t, path, base+"  - {model: c, service: qwen, retries: -3}\n")
	waitClosed(t, tried, 5*time.Second, "bad reload tried")
	if _, err := chat(context.Background(), c, "b"); err != nil {
		t.Fatalf("a rejected reload broke serving: %v", err)
	}
	if _, err := chat(context.Background(), c, "c"); err == nil {
		t.Fatal("a route from a rejected config is served")
	}
	if d.cfgState.errors.Get() != 1 {
		t.Errorf("reload errors counted: %d", d.cfgState.errors.Get())
	}

	<-done
	for i, err := range errs {
		if err != nil {
			t.Errorf("stream %d cut by the reload: %v", i, err)
		}
	}
}

func TestNacosConfigChangeApplied(t *testing.T) {
	addr := nacostest.Addr(t)
	group := testkit.UniqueGroup("E2ECFG")
	m := startMock(t, "m", mockllm.Config{})
	nacostest.Register(t, addr, group, "qwen", "127.0.0.1", port(m.Addr()), 1, nil)
	cfg := nacosConfig(addr, group, "qwen", "keep")
	cfg.ConfigSource = &ConfigSource{Nacos: &NacosConfigRef{}}
	d := startDaemon(t, cfg)
	d.waitPool(t, discovery.ServiceKey(group, "qwen"), 10*time.Second, func(l []*discovery.Instance) bool { return len(l) == 1 })

	pub, err := nacos.DialConfig(nacosClientConfig(cfg.Discovery.Nacos))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	var took time.Duration
	for v := 0; ; v++ { // the first change and a later one
		applied, _ := d.cfgState.changed()
		begin := time.Now()
		if err := pub.Publish("modelgate.yaml", group, fmt.Sprintf("# v%d\nroutes:\n  - {model: chat2, service: qwen}\n", v)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-applied:
			took = time.Since(begin)
		case <-time.After(10 * time.Second):
			t.Fatalf("Nacos Config change %d not applied within 10s; last error %q", v, d.cfgState.lastErr)
		}
		if v == 1 {
			break
		}
	}
	t.Logf("a Nacos Config change was applied in %v", took)
	if took > 2*time.Second {
		t.Fatalf("Nacos Config change took %v, want ≤ 2s", took)
	}
	if _, err := chat(context.Background(), d.client(), "chat2"); err != nil {
		t.Fatalf("route from Nacos Config not served: %v", err)
	}
	_, tried := d.cfgState.changed()
	if err := pub.Publish("modelgate.yaml", group, "routes:\n  - {model: chat3, servce: qwen}\n"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, tried, 2*time.Second, "bad Nacos Config tried")
	if _, err := chat(context.Background(), d.client(), "chat2"); err != nil || !strings.Contains(d.cfgState.lastErr, "servce") {
		t.Fatalf("bad Nacos Config: serving %v, last error %q", err, d.cfgState.lastErr)
	}
}

func TestSelfRegistration(t *testing.T) {
	addr := nacostest.Addr(t)
	group := testkit.UniqueGroup("E2ESELF")
	cfg := nacosConfig(addr, group, "qwen", "keep")
	cfg.Register = &RegisterConfig{Group: group, IP: "127.0.0.1"}
	cfg.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Discovery.Nacos.CacheDir = t.TempDir()
	if err := cfg.normalize(); err != nil {
		t.Fatal(err)
	}
	td, stop := runDaemon(t, cfg, "", nil)
	d := td.daemon

	// The daemon watches its own group, so its pool sees itself arrive.
	key := discovery.ServiceKey(group, "modelgate")
	td.waitPool(t, key, 10*time.Second, func(l []*discovery.Instance) bool {
		return len(l) == 1 && l[0].Addr() == d.apiLn.Addr().String()
	})
	// A second watcher sees it leave when the daemon shuts down.
	other := startDaemon(t, nacosConfig(addr, group, "modelgate", "apply"))
	other.waitPool(t, key, 10*time.Second, func(l []*discovery.Instance) bool { return len(l) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	other.waitPool(t, key, 5*time.Second, func(l []*discovery.Instance) bool { return len(l) == 0 })
}

// TestReloadBadRetryOnKeepsOld: reloads with hostile retry_on and breaker
// values are refused and the retry_on in force goes on retrying: an
// instance that answers 404 is retried on the other (404 is no default
// retry status), request after request.
func TestReloadBadRetryOnKeepsOld(t *testing.T) {
	bad := startMock(t, "bad", mockllm.Config{FailRate: 1, FailStatus: 404})
	good := startMock(t, "good", mockllm.Config{})
	dir := t.TempDir()
	pool := filepath.Join(dir, "pool.yaml")
	write(t, pool, "instances:\n  - {service: q, addr: '"+bad.Addr()+"'}\n  - {service: q, addr: '"+good.Addr()+"'}\n")
	path := filepath.Join(dir, "modelgate.yaml")
	head := "discovery: {static: " + pool + "}\nroutes:\n  - model: a\n    service: q\n    retries: 1\n"
	write(t, path, head+"    retry_on: [404]\n")
	d := startFromFile(t, path)
	c := d.client()
	serve := func(when string) {
		t.Helper()
		for i := range 20 {
			if _, err := chat(context.Background(), c, "a"); err != nil {
				t.Fatalf("%s, request %d: %v", when, i, err)
			}
		}
	}
	serve("before")
	for i, v := range []string{"    retry_on: [200]\n", "    retry_on: [404.5]\n", "    retry_on: ['404']\n",
		"    retry_on: [404]\n    breaker: {failure_ratio: 2}\n", "    retry_on: [404]\n    breaker: {open_timeout: -1s}\n"} {
		_, tried := d.cfgState.changed()
		write(t, path, head+v)
		waitClosed(t, tried, 5*time.Second, "bad reload tried")
		if got := d.cfgState.errors.Get(); got != uint64(i+1) {
			t.Fatalf("%q: reload errors %d, want %d", v, got, i+1)
		}
		serve(strings.TrimSpace(v))
	}
	if bad.Requests() == 0 {
		t.Fatal("the failing instance was never tried: the test proves nothing")
	}
}
