package router

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/testkit"
)

// chatTurn is turn t of conversation c: a distinct ~4 KB document as the
// system prompt, then the earlier turns, then a new question.
func chatTurn(model string, c, t int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, `{"model":%q,"max_tokens":8,"messages":[{"role":"system","content":"%s"}`, model,
		strings.Repeat(fmt.Sprintf("conversation %d document. ", c), 160))
	for i := range t {
		fmt.Fprintf(&sb, `,{"role":"user","content":"question %d"},{"role":"assistant","content":"lorem ipsum dolor sit amet consectetur adipiscing elit"}`, i)
	}
	fmt.Fprintf(&sb, `,{"role":"user","content":"question %d"}]}`, t)
	return sb.String()
}

// converse runs conversations turns deep, four at a time, each turn after
// the previous one of its conversation, and fails on any error status.
func (g *gateway) converse(model string, conversations, turns int) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range 4 {
		wg.Go(func() {
			for c := range next {
				for t := range turns {
					if r := g.do("POST", "/v1/chat/completions", chatTurn(model, c, t)); r.StatusCode() != 200 {
						g.t.Errorf("%s conversation %d turn %d: %d %s", model, c, t, r.StatusCode(), r.Body())
					}
				}
			}
		})
	}
	for c := range conversations {
		next <- c
	}
	close(next)
	wg.Wait()
}

func hitRatio(ms []*mockllm.Server) float64 {
	var hit, all int64
	for _, m := range ms {
		st := m.Engine()
		hit, all = hit+st.CachedTokens, all+st.PromptTokens
	}
	return float64(hit) / float64(all)
}

// Multi-turn conversations through the router: with policy engine the
// mock engines serve most prompt tokens from their prefix caches, far more
// than with p2c; the engines' queue and hit ratio, scraped from their
// vLLM-format metrics, show on /admin/pool and /metrics.
func TestEnginePolicyKeepsConversationsOnTheirCache(t *testing.T) {
	g := newGateway(t, Config{
		Routes: []Route{{Model: "spread", Service: "qwen-a", Policy: "p2c"},
			{Model: "affine", Service: "qwen-b", Policy: "engine", Scorers: Scorers{Prefix: 3, Queue: 2, Latency: 1}}},
		EngineMetrics: EngineMetricsConfig{Interval: 20 * time.Millisecond},
	})
	eng := mockllm.Config{Engine: &mockllm.EngineConfig{PrefillPerToken: 2 * time.Microsecond, Slots: 2}}
	meta := map[string]string{"engine": "vllm"}
	spread := g.mocks("qwen-a", 3, eng, meta)
	affine := g.mocks("qwen-b", 3, eng, meta)
	g.converse("spread", 24, 4)
	g.converse("affine", 24, 4)
	p2c, engine := hitRatio(spread), hitRatio(affine)
	t.Logf("prefix-cache hit ratio: p2c %.3f, engine %.3f", p2c, engine)
	// Every turn after the first can hit: 3 of 4 turns, each mostly prefix.
	if engine < 0.55 || engine < p2c+0.1 {
		t.Errorf("hit ratio with policy engine %.3f, with p2c %.3f: want ≥ 0.55 and 0.1 above p2c", engine, p2c)
	}

	addr := affine[0].Addr()
	var pool PoolView
	var want float64
	if !testkit.Await(10*time.Second, 10*time.Millisecond, func() bool {
		_ = json.Unmarshal(mustJSON(t, g.router.poolView()), &pool)
		st := affine[0].Engine()
		want = float64(st.CachedTokens) / float64(st.PromptTokens)
		ev := findEngine(pool, addr)
		return ev != nil && ev.Fresh && ev.CacheHitRatio > want-0.001 && ev.CacheHitRatio < want+0.001
	}) {
		t.Fatalf("/admin/pool never showed %s's own cache-hit ratio %.3f: %+v", addr, want, findEngine(pool, addr))
	}
	if ev := findEngine(pool, addr); ev.Engine != "vllm" || ev.Scrapes["ok"] == 0 {
		t.Errorf("/admin/pool engine view %+v", ev)
	}
	var page fasthttp.RequestCtx
	g.router.serveStatus(&page)
	ev := findEngine(pool, addr)
	for _, want := range []string{`<td class="engine ok"`, fmt.Sprintf("%v waiting, %v running", ev.Waiting, ev.Running),
		`<td class="cache-hit">` + formatFloat(100*ev.CacheHitRatio, 1) + " %"} {
		if !strings.Contains(string(page.Response.Body()), want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	for _, name := range []string{
		`modelgate_engine_metrics_fresh{service="LLM@@qwen-b",upstream="` + addr + `",engine="vllm"}`,
		`modelgate_engine_requests_waiting{service="LLM@@qwen-b",upstream="` + addr + `",engine="vllm"}`,
		`modelgate_engine_prefix_cache_hit_ratio{service="LLM@@qwen-b",upstream="` + addr + `",engine="vllm"}`,
	} {
		if g.metric(name) < 0 {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func findEngine(p PoolView, addr string) *EngineView {
	for _, s := range p.Services {
		for _, in := range s.Instances {
			if in.Addr == addr {
				return in.Engine
			}
		}
	}
	return nil
}

func TestRoutePolicyValidation(t *testing.T) {
	for _, tc := range []struct {
		rt   Route
		want string
	}{
		{Route{Model: "a", Policy: "engine"}, ""},
		{Route{Model: "a", Policy: "wrr"}, ""},
		{Route{Model: "a", Policy: "fastest"}, "routes[0].policy"},
		{Route{Model: "a", Scorers: Scorers{Prefix: 1}}, "routes[0].scorers: only with policy engine"},
		{Route{Model: "a", Policy: "engine", Scorers: Scorers{Queue: -1}}, "weight queue"},
		{Route{Model: "a", Policy: "engine", Scorers: Scorers{LoadFactor: 0.9}}, "load_factor"},
	} {
		cfg := Config{Routes: []Route{tc.rt}}
		err := cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.rt, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want %q", tc.rt, err, tc.want)
		}
	}
}

// Unique prompts through the router onto mock engines (2 slots each, as
// many clients as slots, vLLM metrics scraped every 20 ms): nothing
// matches, and policy engine spreads them evenly — as evenly as the live
// in-flight counts allow, where p2c's random pairs let one engine queue
// while another has a free slot. Wall times are logged side by side; the
// deterministic comparison is balancer/engine's TestUniquePromptsNoWorseThanP2C.
func TestEnginePolicySpreadsUniquePrompts(t *testing.T) {
	g := newGateway(t, Config{
		Routes: []Route{{Model: "spread", Service: "qwen-a", Policy: "p2c"},
			{Model: "affine", Service: "qwen-b", Policy: "engine"}},
		EngineMetrics: EngineMetricsConfig{Interval: 20 * time.Millisecond},
	})
	const n, slots, prompts = 3, 2, 90
	eng := mockllm.Config{Engine: &mockllm.EngineConfig{PrefillPerToken: 10 * time.Microsecond, Slots: slots}}
	meta := map[string]string{"engine": "vllm"}
	mocks := map[string][]*mockllm.Server{"spread": g.mocks("qwen-a", n, eng, meta), "affine": g.mocks("qwen-b", n, eng, meta)}
	run := func(model string, from int) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		next := make(chan int)
		for range n * slots {
			wg.Go(func() {
				for c := range next {
					if r := g.do("POST", "/v1/chat/completions", chatTurn(model, c, 0)); r.StatusCode() != 200 {
						g.t.Errorf("%s prompt %d: %d %s", model, c, r.StatusCode(), r.Body())
					}
				}
			})
		}
		for c := range prompts / 3 {
			next <- from + c
		}
		close(next)
		wg.Wait()
		return time.Since(start)
	}
	walls := map[string]time.Duration{}
	for round := range 3 { // interleaved: the machine's load changes
		for _, m := range []string{"spread", "affine"} {
			walls[m] += run(m, 10_000*(round+1))
		}
	}
	for _, m := range []string{"spread", "affine"} {
		var served []int64
		for _, s := range mocks[m] {
			served = append(served, s.Engine().PromptTokens)
		}
		t.Logf("%s: wall %v, prompt tokens per engine %v", m, walls[m].Round(time.Millisecond), served)
		if m != "affine" {
			continue
		}
		var sum int64
		for _, v := range served {
			sum += v
		}
		for i, v := range served {
			// ± 30 %: latency counts too, and under -race on a loaded machine
			// the engines' TTFTs wander; a herd leaves one far below.
			if v < sum/n*7/10 || v > sum/n*13/10 {
				t.Errorf("policy engine: engine %d prefilled %d of %d prompt tokens, want a third ± 30 %%", i, v, sum)
			}
		}
	}
}
