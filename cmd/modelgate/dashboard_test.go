package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/nacostest"
	"github.com/modelgate/modelgate/internal/testkit"
	"github.com/modelgate/modelgate/router"
)

// TestDashboardQueriesReturnData runs every query of the shipped Grafana
// dashboard against a real Prometheus (Debian's, on loopback) scraping a
// daemon under load — two versions behind one route, a consumer key, a
// route pinned to tier 2 with a concurrency cap of 1 so that requests
// queue — and checks that each returns data.
func TestDashboardQueriesReturnData(t *testing.T) {
	bin := prometheusBin(t)
	addr := nacostest.Addr(t)
	group := testkit.UniqueGroup("DASH")
	v1 := startMock(t, "v1", mockllm.Config{StreamChunks: 3, Latency: 5 * time.Millisecond})
	v2 := startMock(t, "v2", mockllm.Config{StreamChunks: 3, Latency: 5 * time.Millisecond})
	q := startMock(t, "q", mockllm.Config{Latency: 30 * time.Millisecond})
	nacostest.Register(t, addr, group, "qwen", "127.0.0.1", port(v1.Addr()), 9, map[string]string{"version": "v1"})
	nacostest.Register(t, addr, group, "qwen", "127.0.0.1", port(v2.Addr()), 1, map[string]string{"version": "v2"})
	nacostest.Register(t, addr, group, "slow", "127.0.0.1", port(q.Addr()), 1, nil)
	cfg := nacosConfig(addr, group, "qwen", "keep")
	cfg.Router.Routes = append(cfg.Router.Routes, router.Route{Model: "queued", Service: "slow", MaxConcurrency: 1})
	sum := sha256.Sum256([]byte("sk-dash"))
	cfg.Router.Consumers = []router.Consumer{{Name: "team-a", KeySHA256: hex.EncodeToString(sum[:])}}
	d := startDaemon(t, cfg)
	d.waitPool(t, discovery.ServiceKey(group, "qwen"), 10*time.Second, func(l []*discovery.Instance) bool { return len(l) == 2 })
	d.waitPool(t, discovery.ServiceKey(group, "slow"), 10*time.Second, func(l []*discovery.Instance) bool { return len(l) == 1 })
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Post("http://"+d.admin+"/admin/degrade?route=queued&tier=2&ttl=10m", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("pin tier 2: %d", resp.StatusCode)
	}

	prom := startPrometheus(t, bin, d.admin)

	// Load: bounded in time and count, on loopback.
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
	defer cancel()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := openai.NewClient(option.WithBaseURL("http://"+d.api+"/v1/"), option.WithAPIKey("sk-dash"),
		option.WithMaxRetries(0), option.WithRequestTimeout(10*time.Second), option.WithHTTPClient(&http.Client{Transport: tr}))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; i < 400 && ctx.Err() == nil; i++ {
				switch {
				case w == 3: // concurrent requests to the capped route wait in its queue
					_, _ = chat(ctx, c, "queued")
				case i%3 == 0:
					s := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
						Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
					for s.Next() {
					}
				default:
					_, _ = chat(ctx, c, "chat")
				}
			}
		})
	}
	wg.Go(func() {
		for i := 0; i < 400 && ctx.Err() == nil; i++ {
			_, _ = chat(ctx, c, "queued")
		}
	})
	wg.Wait()

	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot(), "examples", "grafana", "modelgate-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			expr := strings.ReplaceAll(tg.Expr, "$job", "modelgate")
			series := promQuery(t, prom, expr)
			if series == 0 {
				t.Errorf("panel %q: no data from %s", p.Title, expr)
			} else {
				t.Logf("panel %q: %d series", p.Title, series)
			}
			n++
		}
	}
	// Data, and the right data: the capped route queued, v2 got its weight's share.
	for _, expr := range []string{
		`histogram_quantile(0.95, sum by (le, model) (rate(modelgate_queue_wait_seconds_bucket{model="queued"}[5m]))) > 0`,
		`sum by (service, version) (rate(modelgate_upstream_requests_total{version="v2"}[1m])) / ignoring (version) group_left sum by (service) (rate(modelgate_upstream_requests_total[1m])) > 0.02 < 0.4`,
		`sum(rate(modelgate_consumer_requests_total{consumer="team-a"}[1m])) > 0`,
	} {
		if promQuery(t, prom, expr) != 1 {
			t.Errorf("no series for %s", expr)
		}
	}
	if n < 17 {
		t.Errorf("only %d queries in the dashboard", n)
	}
}

// startPrometheus runs Debian's Prometheus on a free loopback port,
// scraping target every second, until the test ends; it returns its
// address once the target's first scrape succeeded.
func startPrometheus(t *testing.T, bin, target string) string {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	write(t, conf, fmt.Sprintf("global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n  - job_name: modelgate\n    static_configs: [{targets: [%q]}]\n", target))
	addr := testkit.FreeAddr(t)
	var out testkit.Buffer
	cmd := exec.Command(filepath.Join(bin, "prometheus"), "--config.file="+conf,
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// Polling Prometheus's API: it has no event to await.
	if !testkit.Await(60*time.Second, 200*time.Millisecond, func() bool { return promQueryErr(addr, `up{job="modelgate"} == 1`) > 0 }) {
		t.Fatalf("Prometheus did not scrape %s within 60s:\n%s", target, out.String())
	}
	return addr
}

// promQuery returns how many series an instant query returns now.
func promQuery(t *testing.T, prom, expr string) int {
	t.Helper()
	n := promQueryErr(prom, expr)
	if n < 0 {
		t.Errorf("query failed: %s", expr)
		return 0
	}
	return n
}

func promQueryErr(prom, expr string) int {
	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://" + prom + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &r) != nil || r.Status != "success" {
		return -1
	}
	return len(r.Data.Result)
}
