package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleConfigIsValid(t *testing.T) {
	t.Setenv("NACOS_PASSWORD", "secret")
	t.Setenv("VENDOR_API_KEY", "sk-vendor")
	c, err := loadConfig("../../examples/modelgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Discovery.Nacos.Password != "secret" {
		t.Errorf("${NACOS_PASSWORD} not expanded: %q", c.Discovery.Nacos.Password)
	}
	if r := c.Router.Routes[0]; r.ServiceKey() != "LLM@@qwen-7b" || r.Retries != 1 || len(r.RetryOn) != 5 ||
		r.Breaker == nil || r.Breaker.ConsecutiveFailures != 5 || r.Breaker.OpenTimeout != 10*time.Second {
		t.Errorf("route: %+v", r)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"no discovery", "routes: []\n", "discovery"},
		{"both sources", "discovery: {static: a.yaml, nacos: {servers: [x:1]}}\n", "not both"},
		{"unknown field", "discovery: {static: a.yaml}\nlisten_addr: x\n", "listen_addr"},
		{"no servers", "discovery: {nacos: {groups: [A]}}\n", "servers"},
		{"bad policy", "discovery: {nacos: {servers: [x:1], empty_policy: drop}}\n", "empty_policy"},
		{"route without model", "discovery: {static: a.yaml}\nroutes: [{service: x}]\n", "routes[0].model"},
		{"duplicate name", "discovery: {static: a.yaml}\nroutes: [{model: a}, {model: b, aliases: [a]}]\n", "already used"},
		{"bad retries", "discovery: {static: a.yaml}\nroutes: [{model: a, retries: -1}]\n", "retries"},
		{"redis without addr", "discovery: {static: a.yaml}\nredis: {db: 1}\n", "redis.addr: required"},
		{"redis fallback", "discovery: {static: a.yaml}\nredis: {addr: 'h:1', quota_fallback: maybe}\n", "redis.quota_fallback"},
		{"nacos access key alone", "discovery: {nacos: {servers: ['h:1'], access_key: ak}}\n", "set both or neither"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// TestCheckReportsEveryMistakeWithItsLine: three mistakes, three lines.
func TestCheckReportsEveryMistakeWithItsLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	bad := "discovery:\n  static: pool.yaml\nroutes:\n  - model: chat\n    retries: 99\n    timout: 5s\n  - service: nameless\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", "-config", path}, &stdout, &stderr); code == 0 {
		t.Fatal("check passed a bad config")
	}
	want := []string{path + ":5: routes[0].retries", path + ":6: field timout not found", path + ":7: routes[1].model: required"}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got:\n%s", stderr.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
		}
	}
}

// TestStaticUnknownCredRef: a static pool whose instance names a
// credential the config lacks is a config error (check, reload); naming one
// it holds is not.
func TestStaticUnknownCredRef(t *testing.T) {
	dir := t.TempDir()
	pool := filepath.Join(dir, "pool.yaml")
	if err := os.WriteFile(pool, []byte("instances:\n  - {service: chat, addr: 127.0.0.1:9, metadata: {cred_ref: vendor}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MG_TEST_VENDOR_KEY", "k")
	doc := "discovery: {static: " + pool + "}\n"
	if _, err := parseConfig([]byte(doc)); err == nil || !strings.Contains(err.Error(), `cred_ref "vendor" names no credential`) {
		t.Fatalf("unknown cred_ref: %v", err)
	}
	if _, err := parseConfig([]byte(doc + "credentials: {vendor: {env: MG_TEST_VENDOR_KEY}}\n")); err != nil {
		t.Fatalf("known cred_ref: %v", err)
	}
}

// TestFractionsInIntegerFields: yaml.v3 truncates 503.5 into an int field
// without a word; check refuses a fraction wherever an integer is wanted,
// at its line, and keeps accepting whole numbers and floats where floats
// belong.
func TestFractionsInIntegerFields(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"retry_on status", "discovery: {static: a.yaml}\nroutes:\n  - model: a\n    retry_on: [503.5]\n", "line 4: routes[0].retry_on[0]: 503.5, want a whole number"},
		{"retries", "discovery: {static: a.yaml}\nroutes:\n  - model: a\n    retries: 1.9\n", "line 4: routes[0].retries: 1.9"},
		{"body limit", "discovery: {static: a.yaml}\nmax_body_size: 2.5\n", "line 2: max_body_size: 2.5"},
		{"breaker failures", "discovery: {static: a.yaml}\nroutes:\n  - model: a\n    breaker: {consecutive_failures: 2.5}\n", "line 4: routes[0].breaker.consecutive_failures: 2.5"},
		{"ok", "discovery: {static: a.yaml}\nroutes:\n  - model: a\n    retry_on: [503.0, 429]\n    breaker: {failure_ratio: 0.5}\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tt.yaml))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
