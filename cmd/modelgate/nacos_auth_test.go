package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/nacostest"
	"github.com/modelgate/modelgate/internal/testkit"
)

func httpStatus(t *testing.T, u string) int {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// startUnsynced runs a daemon that may never sync, logging into logs.
func startUnsynced(t *testing.T, cfg *Config, logs io.Writer) *testDaemon {
	t.Helper()
	cfg.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Discovery.Nacos.CacheDir = t.TempDir()
	if err := cfg.normalize(); err != nil {
		t.Fatal(err)
	}
	d, err := newDaemon(cfg, "", nil, nil, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	return &testDaemon{daemon: d, api: d.apiLn.Addr().String(), admin: d.adminLn.Addr().String()}
}

// TestNacosAuthRealServer runs daemons against a real Nacos with its auth
// on: a wrong password keeps the daemon not ready and says why at error
// level; a password changed under a running daemon retires nothing.
func TestNacosAuthRealServer(t *testing.T) {
	srv := nacostest.StartPrivateWith(t, nacostest.AuthOptions(10*time.Second)...)
	const good, next = "first-secret-1", "second-secret-2"
	nacostest.InitAdmin(t, srv.Addr(), good)
	group := testkit.UniqueGroup("E2EAUTH")
	key := discovery.ServiceKey(group, "qwen")
	m := startMock(t, "m", mockllm.Config{})
	nacostest.RegisterPersistent(t, srv.Addr(), group, "qwen", "127.0.0.1", port(m.Addr()), nil)

	t.Run("wrong password", func(t *testing.T) {
		var logs testkit.Buffer
		cfg := nacosConfig(srv.Addr(), group, "qwen", "keep")
		cfg.Discovery.Nacos.Username, cfg.Discovery.Nacos.Password = "nacos", "not-the-password"
		d := startUnsynced(t, cfg, &logs)
		testkit.Eventually(t, 20*time.Second, "two refused logins counted", func() bool {
			return metricValue(t, d.admin, `modelgate_nacos_errors_total{kind="auth"}`) >= 2
		})
		if s := httpStatus(t, "http://"+d.admin+"/readyz"); s != http.StatusServiceUnavailable {
			t.Fatalf("/readyz = %d with a wrong password, want 503", s)
		}
		out := logs.String()
		if !strings.Contains(out, `"level":"error"`) || !strings.Contains(out, "refused: status 403: Access Denied") {
			t.Fatalf("no error line with Nacos's message:\n%s", out)
		}
		if strings.Contains(out, "not-the-password") {
			t.Fatal("the password is in the log")
		}
	})

	t.Run("password changed under a running daemon", func(t *testing.T) {
		cfg := nacosConfig(srv.Addr(), group, "qwen", "keep")
		cfg.Discovery.Nacos.Username, cfg.Discovery.Nacos.Password = "nacos", good
		cfg.Discovery.Nacos.EmptyGrace = time.Second
		d := startDaemon(t, cfg)
		d.waitPool(t, key, 20*time.Second, func(l []*discovery.Instance) bool { return len(l) == 1 })
		if s := httpStatus(t, "http://"+d.admin+"/readyz"); s != http.StatusOK {
			t.Fatalf("/readyz = %d", s)
		}
		nacostest.ChangePassword(t, srv.Addr(), nacostest.Login(t, srv.Addr(), "nacos", good), "nacos", next)
		// Nacos reloads its users within ~15 s and the daemon's token (10 s)
		// expires: its logins start failing.
		testkit.Eventually(t, 60*time.Second, "refused logins", func() bool {
			return metricValue(t, d.admin, `modelgate_nacos_errors_total{kind="auth"}`) >= 1
		})
		base := metricValue(t, d.admin, `modelgate_nacos_errors_total{kind="auth"}`)
		testkit.Eventually(t, 30*time.Second, "more refused logins, past the empty grace", func() bool {
			return metricValue(t, d.admin, `modelgate_nacos_errors_total{kind="auth"}`) >= base+3
		})
		svc := d.pool.Snapshot().Service(key)
		if svc == nil || len(svc.Instances) != 1 {
			t.Fatalf("instance retired after the password changed: %+v", svc)
		}
		if _, err := chat(context.Background(), d.client(), "chat"); err != nil {
			t.Fatalf("chat after the password changed: %v", err)
		}
	})
}
