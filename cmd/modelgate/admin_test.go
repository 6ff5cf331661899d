package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/router"
)

// adminDo sends one request to the admin listener.
func adminDo(t *testing.T, d *testDaemon, method, path string, headers ...string) (int, string) {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI("http://" + d.admin + path)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if err := fasthttp.Do(req, resp); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode(), string(resp.Body())
}

func staticDaemon(t *testing.T, cfg *Config, mocks ...*mockllm.Server) *testDaemon {
	t.Helper()
	staticPool(t, cfg, mocks)
	return startDaemon(t, cfg)
}

// staticPool points cfg at a static pool file of mocks.
func staticPool(t *testing.T, cfg *Config, mocks []*mockllm.Server) {
	t.Helper()
	pool := "instances:\n"
	for _, m := range mocks {
		pool += "  - {service: " + m.Config().Name + ", addr: '" + m.Addr() + "'}\n"
	}
	path := filepath.Join(t.TempDir(), "pool.yaml")
	write(t, path, pool)
	cfg.Discovery.Static = path
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestAdminAuth: with a token every admin path but /healthz and /readyz
// needs it; state changes need POST from no other origin; a pin's ttl is
// positive and at most 24h.
func TestAdminAuth(t *testing.T) {
	m := startMock(t, "chat", mockllm.Config{})
	d := staticDaemon(t, &Config{Admin: AdminConfig{TokenSHA256: sha256Hex("admin-token")},
		Router: router.Config{Routes: []router.Route{{Model: "chat"}}}}, m)
	auth := []string{"Authorization", "Bearer admin-token"}
	for _, tc := range []struct {
		name, method, path string
		headers            []string
		status             int
	}{
		{"no token", "GET", "/admin/pool", nil, 401},
		{"no token, metrics", "GET", "/metrics", nil, 401},
		{"no token, status page", "GET", "/", nil, 401},
		{"no token, config", "GET", "/admin/config", nil, 401},
		{"no token, pin", "POST", "/admin/degrade?route=chat&tier=1&ttl=60s", nil, 401},
		{"wrong token", "GET", "/admin/pool", []string{"Authorization", "Bearer admin-tokeN"}, 401},
		{"healthz is open", "GET", "/healthz", nil, 200},
		{"readyz is open", "GET", "/readyz", nil, 200},
		{"token", "GET", "/admin/pool", auth, 200},
		{"token, any scheme case", "GET", "/metrics", []string{"Authorization", "bearer admin-token"}, 200},
		{"basic, token as password", "GET", "/", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:admin-token"))}, 200},
		{"basic, wrong password", "GET", "/", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin-token:x"))}, 401},
		{"basic, no password", "GET", "/", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin-token"))}, 401},
		{"basic, not base64", "GET", "/", []string{"Authorization", "Basic !!!"}, 401},
		{"no token, profiles", "GET", "/debug/pprof/", nil, 401},
		{"no token, cpu profile", "GET", "/debug/pprof/profile?seconds=1", nil, 401},
		{"token, profiles", "GET", "/debug/pprof/", auth, 200},
		{"token, heap profile", "GET", "/debug/pprof/heap", auth, 200},
		{"cross-origin pin", "POST", "/admin/degrade?route=chat&tier=1&ttl=60s", append([]string{"Origin", "http://evil.example"}, auth...), 403},
		{"cross-site fetch", "POST", "/admin/degrade?route=chat&tier=1&ttl=60s", append([]string{"Sec-Fetch-Site", "cross-site"}, auth...), 403},
		{"null origin", "POST", "/admin/degrade?route=chat&tier=1&ttl=60s", append([]string{"Origin", "null"}, auth...), 403},
		{"PUT", "PUT", "/admin/degrade?route=chat&tier=1&ttl=60s", auth, 405},
		{"ttl too long", "POST", "/admin/degrade?route=chat&tier=1&ttl=1000000h", auth, 400},
		{"negative ttl", "POST", "/admin/degrade?route=chat&tier=1&ttl=-5s", auth, 400},
		{"no ttl", "POST", "/admin/degrade?route=chat&tier=1", auth, 400},
		{"pin", "POST", "/admin/degrade?route=chat&tier=1&ttl=24h", auth, 200},
		{"same-origin pin", "POST", "/admin/degrade?route=chat&tier=auto", append([]string{"Origin", "http://" + d.admin}, auth...), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := adminDo(t, d, tc.method, tc.path, tc.headers...); status != tc.status {
				t.Fatalf("%d, want %d: %s", status, tc.status, body)
			}
		})
	}
	t.Run("a browser is asked for the token", func(t *testing.T) {
		var r fasthttp.Response
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		req.SetRequestURI("http://" + d.admin + "/")
		if err := fasthttp.Do(req, &r); err != nil || r.StatusCode() != 401 {
			t.Fatalf("%d %v", r.StatusCode(), err)
		}
		var challenges []string
		for _, v := range r.Header.PeekAll("WWW-Authenticate") {
			challenges = append(challenges, string(v))
		}
		if !slices.ContainsFunc(challenges, func(c string) bool { return strings.HasPrefix(c, "Basic ") }) {
			t.Fatalf("challenges %q, want a Basic one", challenges)
		}
	})
}

// TestAdminWithoutTokenOnLoopback: no token on loopback is allowed, and
// cross-origin POSTs are still refused.
func TestAdminWithoutTokenOnLoopback(t *testing.T) {
	m := startMock(t, "chat", mockllm.Config{})
	d := staticDaemon(t, &Config{Router: router.Config{Routes: []router.Route{{Model: "chat"}}}}, m)
	if status, _ := adminDo(t, d, "GET", "/admin/routes"); status != 200 {
		t.Fatalf("GET /admin/routes: %d", status)
	}
	if status, _ := adminDo(t, d, "POST", "/admin/degrade?route=chat&tier=3&ttl=1h", "Origin", "http://attacker.example"); status != 403 {
		t.Fatalf("cross-origin POST: %d", status)
	}
}

// TestAdminOffLoopbackWithoutToken: the daemon refuses to start and says
// why, with a non-zero exit.
func TestAdminOffLoopbackWithoutToken(t *testing.T) {
	bin := buildBinary(t)
	m := startMock(t, "chat", mockllm.Config{})
	dir := t.TempDir()
	write(t, filepath.Join(dir, "pool.yaml"), "instances:\n  - {service: chat, addr: '"+m.Addr()+"'}\n")
	write(t, filepath.Join(dir, "modelgate.yaml"), "discovery: {static: "+filepath.Join(dir, "pool.yaml")+"}\nroutes:\n  - {model: chat}\n")
	for _, admin := range []string{"0.0.0.0:0", ":0"} {
		out, err := exec.Command(bin, "-config", filepath.Join(dir, "modelgate.yaml"), "-listen", "127.0.0.1:0", "-admin", admin).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Fatalf("admin %s: exit %v, want non-zero: %s", admin, err, out)
		}
		if !strings.Contains(string(out), "not on loopback and has no token") {
			t.Fatalf("admin %s: unclear message: %s", admin, out)
		}
	}
}
