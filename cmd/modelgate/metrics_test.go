package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/nacostest"
	"github.com/modelgate/modelgate/internal/testkit"
)

// prometheusBin returns the directory of Debian's prometheus and promtool,
// installing the package with scripts/prometheus.sh if needed.
func prometheusBin(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	out, err := exec.Command("bash", filepath.Join(filepath.Dir(file), "..", "..", "scripts", "prometheus.sh")).Output()
	if err != nil {
		t.Fatalf("no promtool for the metrics test: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// scrape returns the daemon's /metrics text.
func scrape(t *testing.T, admin string) []byte {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// TestPromtoolChecksLiveMetrics runs `promtool check metrics` (format and
// lint: HELP, TYPE, names, units) on the /metrics of a daemon that has
// served normal, streamed and failed requests to an instance in the real
// Nacos, and checks the upstream series' labels.
func TestPromtoolChecksLiveMetrics(t *testing.T) {
	bin := prometheusBin(t)
	addr := nacostest.Addr(t)
	group := testkit.UniqueGroup("PROMTOOL")
	m := startMock(t, "m", mockllm.Config{StreamChunks: 3})
	nacostest.Register(t, addr, group, "qwen", "127.0.0.1", port(m.Addr()), 1, map[string]string{"version": "v7"})
	d := startDaemon(t, nacosConfig(addr, group, "qwen", "keep"))
	d.waitPool(t, discovery.ServiceKey(group, "qwen"), 10*time.Second, func(l []*discovery.Instance) bool { return len(l) == 1 })
	ctx := context.Background()
	c := d.client()
	if _, err := chat(ctx, c, "chat"); err != nil {
		t.Fatal(err)
	}
	s := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	for s.Next() {
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := chat(ctx, c, "no-such-model"); err == nil {
		t.Fatal("unknown model answered")
	}

	body := scrape(t, d.admin)
	cmd := exec.Command(filepath.Join(bin, "promtool"), "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\n--- /metrics:\n%s", err, out, body)
	}
	text := string(body)
	for _, want := range []string{
		"# HELP modelgate_requests_total ", "# TYPE modelgate_requests_total counter",
		"# TYPE modelgate_ttft_seconds histogram", "# TYPE modelgate_pool_instances gauge",
		`modelgate_upstream_requests_total{service="` + group + `@@qwen",upstream="` + m.Addr() + `",version="v7",code="200"} 2`,
		`modelgate_breaker_open{service="` + group + `@@qwen",upstream="` + m.Addr() + `",version="v7"} 0`,
		`modelgate_requests_total{model="unknown",code="404"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Prometheus sets "instance" to the scrape target: no series of ours may
	// carry it, and every modelgate family must be described.
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "modelgate_") && strings.Contains(line, "instance=") {
			t.Errorf("series with an instance label: %s", line)
		}
	}
	described := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^# HELP (\S+) \S`).FindAllStringSubmatch(text, -1) {
		described[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`(?m)^(modelgate_[a-z_]+?)(_bucket|_sum|_count)?[{ ]`).FindAllStringSubmatch(text, -1) {
		if !described[m[1]] && !described[m[1]+m[2]] {
			t.Errorf("family %s has no HELP", m[1]+m[2])
		}
	}
}
