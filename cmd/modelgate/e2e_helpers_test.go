package main

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/rs/zerolog"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/router"
)

// testDaemon is a modelgate daemon running in the test process on loopback.
type testDaemon struct {
	*daemon
	api, admin string
}

// startDaemon runs a daemon with cfg (listeners forced to loopback port 0)
// until the test ends.
func startDaemon(t *testing.T, cfg *Config) *testDaemon {
	t.Helper()
	cfg.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0"
	if cfg.Discovery.Nacos != nil && cfg.Discovery.Nacos.CacheDir == "" {
		cfg.Discovery.Nacos.CacheDir = t.TempDir()
	}
	if err := cfg.normalize(); err != nil {
		t.Fatal(err)
	}
	d, stop := runDaemon(t, cfg, "", nil)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	return d
}

// runDaemon builds and runs a daemon, waits until discovery has synced, and
// returns it with the function that stops it and returns run's error.
func runDaemon(t *testing.T, cfg *Config, path string, raw []byte) (*testDaemon, func() error) {
	t.Helper()
	return runDaemonLog(t, cfg, path, raw, zerolog.Nop())
}

// runDaemonLog is runDaemon with a logger.
func runDaemonLog(t *testing.T, cfg *Config, path string, raw []byte, log zerolog.Logger) (*testDaemon, func() error) {
	t.Helper()
	d, err := newDaemon(cfg, path, raw, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	d.fileCheck = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.run(ctx) }()
	stop := func() error { cancel(); return <-done }
	select {
	case <-d.pool.Synced():
	case <-time.After(20 * time.Second):
		_ = stop()
		t.Fatal("discovery did not sync within 20s")
	}
	return &testDaemon{daemon: d, api: d.apiLn.Addr().String(), admin: d.adminLn.Addr().String()}, stop
}

// waitPool waits, on pool change events, until cond holds for service key.
func (d *testDaemon) waitPool(t *testing.T, key string, within time.Duration, cond func([]*discovery.Instance) bool) time.Duration {
	t.Helper()
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for s := d.pool.Snapshot(); ; {
		var list []*discovery.Instance
		if svc := s.Service(key); svc != nil {
			list = svc.Instances
		}
		if cond(list) {
			// The balancer builds from the pool asynchronously: wait for it.
			if err := d.router.Balancer().WaitVersion(ctx, s.Version); err != nil {
				t.Fatalf("balancer did not catch up with pool version %d", s.Version)
			}
			return time.Since(begin)
		}
		var err error
		if s, err = d.pool.WaitChange(ctx, s.Version); err != nil {
			t.Fatalf("pool of %s: condition not met within %v", key, within)
		}
	}
}

// client is an official OpenAI client pointed at the daemon. SDK retries
// are off so that every request is counted once.
func (d *testDaemon) client() openai.Client {
	return openai.NewClient(
		option.WithBaseURL("http://"+d.api+"/v1/"),
		option.WithAPIKey("sk-test"),
		option.WithMaxRetries(0),
		option.WithRequestTimeout(30*time.Second),
	)
}

func chat(ctx context.Context, c openai.Client, model string) (*openai.ChatCompletion, error) {
	return c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello there")},
	})
}

// modelIDs lists the ids of GET /v1/models.
func modelIDs(ctx context.Context, t *testing.T, c openai.Client) []string {
	t.Helper()
	models, err := c.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range models.Data {
		ids = append(ids, m.ID)
	}
	return ids
}

// apiStatus returns the HTTP status of an OpenAI API error, or 0.
func apiStatus(err error) (int, *openai.Error) {
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode, apiErr
	}
	return 0, nil
}

func startMock(t *testing.T, name string, cfg mockllm.Config) *mockllm.Server {
	t.Helper()
	cfg.Name = name
	s, err := mockllm.Start("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func nacosConfig(addr, group, service string, policy string) *Config {
	return &Config{
		Discovery: DiscoveryConfig{Nacos: &NacosConfig{
			Servers: []string{addr}, Groups: []string{group},
			ListInterval: time.Second, ReconcileInterval: time.Second, EmptyPolicy: policy,
		}},
		Router: router.Config{Routes: []router.Route{{Model: "chat", Service: service}}},
	}
}

func port(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}
