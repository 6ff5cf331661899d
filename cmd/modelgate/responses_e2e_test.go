package main

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/enginetest"
	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/nacostest"
	"github.com/modelgate/modelgate/internal/testkit"
	"github.com/modelgate/modelgate/router"
)

// responsesSeen is tests/python/responses_check.py's summary of one model.
type responsesSeen struct {
	Input, Output, Deltas int64
	Types                 []string
}

// runResponsesCheck runs tests/python/responses_check.py against the daemon
// for models and returns its summary.
func runResponsesCheck(t *testing.T, api string, models ...string) map[string]responsesSeen {
	t.Helper()
	args := []string{"--base-url", "http://" + api + "/v1"}
	for _, m := range models {
		args = append(args, "--model", m)
	}
	var seen map[string]responsesSeen
	runPythonCheck(t, 3*time.Minute, &seen, "responses_check.py", args...)
	return seen
}

// TestResponsesRealEngine: the official Python SDK's responses.create,
// streamed and not, and models.retrieve, through modelgate to a llama.cpp
// llama-server (which serves /v1/responses) registered in the real Nacos,
// by an exact route and by a pattern route that sends the client's name
// on. modelgate's token counters equal the usage the SDK saw and the
// engine's own counts.
func TestResponsesRealEngine(t *testing.T) {
	addr := nacostest.Addr(t)
	group := testkit.UniqueGroup("RESPONSES")
	llama := enginetest.Llama(t, enginetest.LlamaOptions{Alias: "tiny"})
	nacostest.Register(t, addr, group, "llama", "127.0.0.1", llama.Port, 1, nil)
	cfg := nacosConfig(addr, group, "llama", "keep")
	cfg.Router.Routes = []router.Route{{Model: "tiny", Service: "llama"}, {Model: "tiny-*", Service: "llama"}}
	d := startDaemon(t, cfg)
	d.waitPool(t, discovery.ServiceKey(group, "llama"), 20*time.Second, func(l []*discovery.Instance) bool { return len(l) == 1 })

	engine := []*enginetest.Server{llama}
	// llama-server counts prompt tokens it evaluated and those it found in
	// its KV cache apart; usage.input_tokens is their sum.
	prompts := func() int64 {
		return engineCounter(t, engine, "llamacpp:prompt_tokens_total") + engineCounter(t, engine, "llamacpp:prompt_tokens_cached_total")
	}
	promptBefore, predictedBefore := prompts(), engineCounter(t, engine, "llamacpp:tokens_predicted_total")

	seen := runResponsesCheck(t, d.api, "tiny", "tiny-v2")
	metric := func(route, typ, src string) int64 {
		return int64(metricValue(t, d.admin, fmt.Sprintf(`modelgate_tokens_total{model=%q,type=%q,source=%q}`, route, typ, src)))
	}
	var totalIn, totalOut int64
	for route, name := range map[string]string{"tiny": "tiny", "tiny-*": "tiny-v2"} {
		s := seen[name]
		if s.Deltas == 0 || s.Input == 0 || s.Output == 0 {
			t.Fatalf("%s: %+v", name, s)
		}
		in, out := metric(route, "input", "usage"), metric(route, "output", "usage")
		if in != s.Input || out != s.Output {
			t.Errorf("route %s: modelgate counted in=%d out=%d, the SDK saw in=%d out=%d", route, in, out, s.Input, s.Output)
		}
		if est := metric(route, "input", "estimated") + metric(route, "output", "estimated"); est != 0 {
			t.Errorf("route %s: %d tokens estimated", route, est)
		}
		totalIn, totalOut = totalIn+in, totalOut+out
		t.Logf("route %s (%s): %d input, %d output tokens; stream of %d deltas, events %v", route, name, in, out, s.Deltas, s.Types)
	}
	var engIn, engOut int64
	testkit.Await(10*time.Second, 200*time.Millisecond, func() bool { // updated as each slot is released
		engIn, engOut = prompts()-promptBefore, engineCounter(t, engine, "llamacpp:tokens_predicted_total")-predictedBefore
		return engIn == totalIn && engOut == totalOut
	})
	if engIn != totalIn || engOut != totalOut {
		t.Errorf("modelgate counted in=%d out=%d, llama-server in=%d out=%d", totalIn, totalOut, engIn, engOut)
	}
	if v := metricValue(t, d.admin, `modelgate_requests_total{model="tiny",code="200",type="stream"}`); v != 1 {
		t.Errorf("streamed responses counted %v, want 1", v)
	}
}

// TestResponsesPythonSDKMock: the official Python SDK reads the mock's
// Responses replies and events as OpenAI's (the fast tests rely on them),
// through modelgate, and the counters equal what the SDK saw.
func TestResponsesPythonSDKMock(t *testing.T) {
	m := startMock(t, "m", mockllm.Config{StreamChunks: 5, ReplyWords: 7})
	pool := filepath.Join(t.TempDir(), "pool.yaml")
	write(t, pool, "instances:\n  - {service: qwen, addr: '"+m.Addr()+"'}\n")
	cfg := &Config{Discovery: DiscoveryConfig{Static: pool}, Router: router.Config{Routes: []router.Route{{Model: "chat", Service: "qwen"}}}}
	d := startDaemon(t, cfg)
	seen := runResponsesCheck(t, d.api, "chat")["chat"]
	in := int64(metricValue(t, d.admin, `modelgate_tokens_total{model="chat",type="input",source="usage"}`))
	out := int64(metricValue(t, d.admin, `modelgate_tokens_total{model="chat",type="output",source="usage"}`))
	if seen.Deltas != 5 || seen.Output != 14 || in != seen.Input || out != seen.Output {
		t.Errorf("SDK saw %+v; modelgate counted in=%d out=%d", seen, in, out)
	}
	if m.Requests() != 2 {
		t.Errorf("mock got %d requests, want 2", m.Requests())
	}
}
