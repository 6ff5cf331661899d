package main

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/rs/zerolog"

	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/redistest"
	"github.com/modelgate/modelgate/internal/testkit"
	"github.com/modelgate/modelgate/router"
)

func sharedConfig(redisAddr string) *Config {
	cfg := &Config{Router: router.Config{
		Routes:    []router.Route{{Model: "chat", Service: "m"}},
		Consumers: []router.Consumer{{Name: "team", KeySHA256: sha256Hex("key-team"), TPM: 6000}},
	}}
	if redisAddr != "" {
		// A timeout this machine's load never reaches: the test is of the
		// shared buckets, not of the fallback (TestSharedCacheAndRedisOutage).
		cfg.Redis = &RedisConfig{Addr: redisAddr, Timeout: 2 * time.Second}
	}
	return cfg
}

func teamClient(d *testDaemon) openai.Client {
	return openai.NewClient(option.WithBaseURL("http://"+d.api+"/v1/"), option.WithAPIKey("key-team"),
		option.WithMaxRetries(0), option.WithRequestTimeout(30*time.Second))
}

// load runs 32 clients spread over daemons for d, each sending a small
// chat request every 100 ms; any reply but 200 or 429 fails the test. It
// returns the tokens the daemons admitted (their consumer token counters).
func load(t *testing.T, daemons []*testDaemon, d time.Duration, during func()) (tokens float64, ok, limited int64) {
	t.Helper()
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var okN, limN atomic.Int64
	for i := range 32 {
		dm := daemons[i%len(daemons)]
		c := teamClient(dm)
		wg.Go(func() {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				_, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "chat", MaxTokens: openai.Int(16),
					Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
				switch status, _ := apiStatus(err); {
				case err == nil:
					okN.Add(1)
				case status == 429:
					limN.Add(1)
				case ctx.Err() != nil:
				default:
					t.Errorf("client error beyond the quota, from %s: %v", dm.api, err)
				}
			}
		})
	}
	if during != nil {
		during()
	}
	wg.Wait()
	for _, dm := range daemons {
		tokens += metricValue(t, dm.admin, `modelgate_consumer_tokens_total{consumer="team",type="input"}`) +
			metricValue(t, dm.admin, `modelgate_consumer_tokens_total{consumer="team",type="output"}`)
	}
	return tokens, okN.Load(), limN.Load()
}

// TestSharedQuotaThreeDaemons: three daemons sharing one Redis admit, for
// one consumer at tpm 6000 over 60 s, what one daemon alone admits.
func TestSharedQuotaThreeDaemons(t *testing.T) {
	rs := redistest.Start(t)
	m := startMock(t, "m", mockllm.Config{})
	const leg = 60 * time.Second
	alone, aOK, aLim := load(t, []*testDaemon{staticDaemon(t, sharedConfig(""), m)}, leg, nil)
	var three []*testDaemon
	for range 3 {
		three = append(three, staticDaemon(t, sharedConfig(rs.Addr), m))
	}
	shared, sOK, sLim := load(t, three, leg, nil)
	t.Logf("tokens admitted at tpm 6000 in %v: one daemon %.0f (%d ok, %d 429), three sharing Redis %.0f (%d ok, %d 429)",
		leg, alone, aOK, aLim, shared, sOK, sLim)
	if diff := (shared - alone) / alone; diff < -0.02 || diff > 0.02 {
		t.Fatalf("three daemons admitted %.0f tokens, one alone %.0f: %.1f%% apart, want within 2%%", shared, alone, 100*diff)
	}
	for _, d := range three {
		if n := metricValue(t, d.admin, `modelgate_redis_fallbacks_total{store="quota"}`); n != 0 {
			t.Fatalf("%v calls fell back to per-process buckets", n)
		}
	}
	if aLim == 0 || sLim == 0 {
		t.Fatal("the load never reached the quota: the test proves nothing")
	}
}

// TestSharedCacheAndRedisOutage: a reply cached through one daemon is a hit
// through another; Redis killed under load costs no request beyond the
// quota, and both the outage and the recovery are logged.
func TestSharedCacheAndRedisOutage(t *testing.T) {
	rs := redistest.Start(t)
	m := startMock(t, "m", mockllm.Config{})
	var logs testkit.Buffer
	// A quota too large to bite: every request still takes from Redis.
	cfg := sharedConfig(rs.Addr)
	cfg.Router.Consumers[0].TPM = 1 << 30
	d1 := staticDaemon(t, cfg, m)
	cfg2 := sharedConfig(rs.Addr)
	cfg2.Router.Consumers[0].TPM = 1 << 30
	d2 := staticDaemonLogged(t, cfg2, &logs, m)

	ask := func(d *testDaemon) *openai.ChatCompletion {
		c := teamClient(d)
		r, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "chat",
			Temperature: openai.Float(0), Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("the same question")}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := ask(d1)
	before := m.Requests()
	second := ask(d2)
	if m.Requests() != before || second.ID != first.ID {
		t.Fatalf("the reply cached through one daemon was not a hit through the other (upstream %d → %d)", before, m.Requests())
	}
	if metricValue(t, d2.admin, `modelgate_cache_hits_total{model="chat",kind="fresh"}`) != 1 {
		t.Fatal("the hit is not counted on the second daemon")
	}

	_, ok, _ := load(t, []*testDaemon{d1, d2}, 6*time.Second, func() {
		time.Sleep(2 * time.Second) // load runs meanwhile: kill Redis in the middle of it
		rs.Kill()
		time.Sleep(2 * time.Second)
		rs.Restart(t)
	})
	if ok == 0 {
		t.Fatal("no request served")
	}
	logs.Wait(t, 10*time.Second, "outage and recovery logged", func(out string) bool {
		return strings.Contains(out, "redis unreachable") && strings.Contains(out, "redis answers again")
	})
	if metricValue(t, d2.admin, `modelgate_redis_fallbacks_total{store="quota"}`) < 1 {
		t.Fatal("fallbacks not counted")
	}
}

// staticDaemonLogged is staticDaemon with its log in logs.
func staticDaemonLogged(t *testing.T, cfg *Config, logs *testkit.Buffer, mocks ...*mockllm.Server) *testDaemon {
	t.Helper()
	staticPool(t, cfg, mocks)
	cfg.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0"
	if err := cfg.normalize(); err != nil {
		t.Fatal(err)
	}
	d, stop := runDaemonLog(t, cfg, "", nil, zerolog.New(logs))
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	return d
}
