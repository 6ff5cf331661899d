package main

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/leaktest"
	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/nacostest"
	"github.com/modelgate/modelgate/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// TestSpineAgainstRealNacos walks the life of a model service registered in
// a real Nacos, driven by the official OpenAI Go client.
func TestSpineAgainstRealNacos(t *testing.T) {
	addr := nacostest.Addr(t)
	group := testkit.UniqueGroup("E2E")
	key := discovery.ServiceKey(group, "qwen")
	m1 := startMock(t, "m1", mockllm.Config{})
	m2 := startMock(t, "m2", mockllm.Config{})
	r1 := nacostest.Register(t, addr, group, "qwen", "127.0.0.1", port(m1.Addr()), 1, map[string]string{"version": "v1", "gpu": "a100"})
	r2 := nacostest.Register(t, addr, group, "qwen", "127.0.0.1", port(m2.Addr()), 1, map[string]string{"version": "v1"})

	d := startDaemon(t, nacosConfig(addr, group, "qwen", "apply"))
	d.waitPool(t, key, 10*time.Second, func(l []*discovery.Instance) bool { return len(l) == 2 })
	ctx := context.Background()
	c := d.client()

	reply, err := chat(ctx, c, "chat")
	if err != nil {
		t.Fatalf("chat through modelgate: %v", err)
	}
	if reply.Choices[0].Message.Content == "" || reply.Usage.TotalTokens == 0 {
		t.Fatalf("empty reply: %+v", reply)
	}

	// Deregistered: within 2 s no request reaches it.
	r2.Deregister()
	took := d.waitPool(t, key, 2*time.Second, func(l []*discovery.Instance) bool { return len(l) == 1 })
	t.Logf("deregistration reached the pool in %v", took)
	before := m2.Requests()
	for range 40 {
		if _, err := chat(ctx, c, "chat"); err != nil {
			t.Fatalf("chat after deregistration: %v", err)
		}
	}
	if n := m2.Requests() - before; n != 0 {
		t.Fatalf("%d requests reached the deregistered instance", n)
	}

	// The other disabled: no instance left → 503 in OpenAI shape.
	r1.Update(1, false)
	d.waitPool(t, key, 3*time.Second, func(l []*discovery.Instance) bool { return len(l) == 0 })
	_, err = chat(ctx, c, "chat")
	status, apiErr := apiStatus(err)
	if status != 503 || apiErr == nil || !strings.Contains(apiErr.Message, "no instance") || apiErr.Code != "no_instance" {
		t.Fatalf("want a 503 no-instance error, got %v (%+v)", err, apiErr)
	}
	if ra := apiErr.Response.Header.Get("Retry-After"); ra == "" {
		t.Error("503 without Retry-After")
	}

	// Re-registered and re-enabled: served again.
	r1.Update(1, true)
	r2.Reregister()
	d.waitPool(t, key, 3*time.Second, func(l []*discovery.Instance) bool { return len(l) == 2 })
	if _, err := chat(ctx, c, "chat"); err != nil {
		t.Fatalf("chat after re-registration: %v", err)
	}
}

// TestNacosWeightSplit checks that Nacos weights 3:1 split 2,000 requests
// within ±5 % of 75/25.
func TestNacosWeightSplit(t *testing.T) {
	addr := nacostest.Addr(t)
	group := testkit.UniqueGroup("E2EW")
	key := discovery.ServiceKey(group, "qwen")
	heavy := startMock(t, "heavy", mockllm.Config{})
	light := startMock(t, "light", mockllm.Config{})
	nacostest.Register(t, addr, group, "qwen", "127.0.0.1", port(heavy.Addr()), 3, nil)
	nacostest.Register(t, addr, group, "qwen", "127.0.0.1", port(light.Addr()), 1, nil)
	// Weighted round robin, where the weights alone decide: p2c also weighs
	// latency, and on a loaded test machine the two mocks' latencies differ
	// by more than its margins at random (p2c's shares by weight are tested
	// in balancer, TestNacosWeights). This test is about the weights that
	// Nacos holds reaching the split.
	cfg := nacosConfig(addr, group, "qwen", "keep")
	cfg.Router.Routes[0].Policy = "wrr"
	d := startDaemon(t, cfg)
	d.waitPool(t, key, 10*time.Second, func(l []*discovery.Instance) bool { return len(l) == 2 })

	// Two clients.
	const total, clients = 2000, 2
	c := d.client()
	var wg sync.WaitGroup
	errs := make(chan error, total)
	for w := range clients {
		wg.Go(func() {
			for i := w; i < total; i += clients {
				if _, err := chat(context.Background(), c, "chat"); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("request failed: %v", err)
	}
	share := float64(heavy.Requests()) / total
	t.Logf("heavy %d, light %d: share %.3f", heavy.Requests(), light.Requests(), share)
	if heavy.Requests()+light.Requests() != total || math.Abs(share-0.75) > 0.05 {
		t.Fatalf("heavy share %.3f, want 0.75±0.05 (heavy %d light %d)", share, heavy.Requests(), light.Requests())
	}
}

func TestDemoAnswersChat(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out testkit.Buffer
	done := make(chan error, 1)
	go func() { done <- runDemo(ctx, "127.0.0.1:0", "127.0.0.1:0", &out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	}()
	api := out.WaitWord(t, 10*time.Second, "API   http://")
	c := (&testDaemon{api: api}).client()
	reply, err := chat(ctx, c, "demo")
	if err != nil {
		t.Fatalf("demo chat: %v", err)
	}
	if reply.Choices[0].Message.Content == "" {
		t.Fatal("empty demo reply")
	}
}
