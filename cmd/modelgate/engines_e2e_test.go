package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/enginetest"
	"github.com/modelgate/modelgate/internal/nacostest"
	"github.com/modelgate/modelgate/internal/testkit"
	"github.com/modelgate/modelgate/router"
)

// realEngines is modelgate in front of servers nobody here wrote: two
// llama.cpp llama-servers (tiny model), an embedding llama-server and a
// LiteLLM proxy (uvicorn), all registered in the real Nacos by the test.
type realEngines struct {
	d           *testDaemon
	group       string
	llamas      []*enginetest.Server
	embed, lite *enginetest.Server
	liteModel   string
}

func startRealEngines(t *testing.T) *realEngines {
	t.Helper()
	addr := nacostest.Addr(t)
	e := &realEngines{group: testkit.UniqueGroup("ENGINES"), liteModel: "mock-gpt"}
	e.llamas = make([]*enginetest.Server, 2)
	enginetest.Parallel(t,
		func(t testing.TB) { e.lite = enginetest.LiteLLM(t, e.liteModel) },
		func(t testing.TB) { e.llamas[0] = enginetest.Llama(t, enginetest.LlamaOptions{Alias: "tiny-1"}) },
		func(t testing.TB) { e.llamas[1] = enginetest.Llama(t, enginetest.LlamaOptions{Alias: "tiny-2"}) },
		func(t testing.TB) { e.embed = enginetest.Llama(t, enginetest.LlamaOptions{Embeddings: true}) },
	)
	for i, s := range e.llamas {
		nacostest.Register(t, addr, e.group, "llama", "127.0.0.1", s.Port, 1, nil)
		// The same servers again in one service, each serving its own model.
		nacostest.Register(t, addr, e.group, "duo", "127.0.0.1", s.Port, 1,
			map[string]string{discovery.MetaModel: "tiny-" + strconv.Itoa(i+1)})
	}
	nacostest.Register(t, addr, e.group, "llama-embed", "127.0.0.1", e.embed.Port, 1, nil)
	nacostest.Register(t, addr, e.group, "litellm", "127.0.0.1", e.lite.Port, 1, nil)

	cfg := nacosConfig(addr, e.group, "llama", "keep")
	cfg.Router.Routes = []router.Route{
		{Model: "llama", Service: "llama"},
		{Model: "embed", Service: "llama-embed"},
		{Model: "lite", Service: "litellm", UpstreamModel: e.liteModel},
		{Model: "demo", Service: "llama"}, // the README's curl examples
		{Model: "tiny-1", Service: "duo"},
		{Model: "two", Aliases: []string{"tiny-2"}, Service: "duo"},
		// Idle connections kept past the servers' 5 s keep-alive: every
		// idle gap over 5 s meets a connection the server closed.
		{Model: "llama-keep", Service: "llama", IdleTimeout: time.Minute},
		{Model: "lite-keep", Service: "litellm", UpstreamModel: e.liteModel, IdleTimeout: time.Minute},
		{Model: "llama-gap", Service: "llama"},
		{Model: "lite-gap", Service: "litellm", UpstreamModel: e.liteModel},
	}
	e.d = startDaemon(t, cfg)
	for svc, n := range map[string]int{"llama": 2, "duo": 2, "llama-embed": 1, "litellm": 1} {
		e.d.waitPool(t, discovery.ServiceKey(e.group, svc), 20*time.Second,
			func(l []*discovery.Instance) bool { return len(l) == n })
	}
	return e
}

// engineCounter sums a counter of llama-server's own /metrics over servers.
func engineCounter(t *testing.T, servers []*enginetest.Server, name string) int64 {
	t.Helper()
	var sum int64
	for _, s := range servers {
		found := false
		for line := range strings.Lines(string(scrape(t, s.Addr))) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				sum += int64(f)
				found = true
			}
		}
		if !found {
			t.Fatalf("%s: no %s in its /metrics", s.Name, name)
		}
	}
	return sum
}

func (e *realEngines) breakerFailures() uint64 {
	var n uint64
	for _, st := range e.d.router.Balancer().Instances() {
		n += st.Failures
	}
	return n
}

// TestRealEngines runs modelgate against real engines in the real Nacos:
// the official Python and Go SDKs through every API, token counters against
// the engines' own counts, metadata.model routing, the README's curl
// examples, and idle gaps that outlast the servers' keep-alive.
func TestRealEngines(t *testing.T) {
	e := startRealEngines(t)
	t.Run("SDKs", e.testSDKs)
	t.Run("MetadataModel", e.testMetadataModel)
	t.Run("READMECurl", e.testREADMECurl)
	t.Run("IdleGaps", e.testIdleGaps)
}

func (e *realEngines) testSDKs(t *testing.T) {
	// llama-server counts prompt tokens it evaluated and those it found in
	// its KV cache apart; usage.prompt_tokens is their sum.
	prompts := func() int64 {
		return engineCounter(t, e.llamas, "llamacpp:prompt_tokens_total") +
			engineCounter(t, e.llamas, "llamacpp:prompt_tokens_cached_total")
	}
	promptBefore := prompts()
	predictedBefore := engineCounter(t, e.llamas, "llamacpp:tokens_predicted_total")

	// The official Python SDK.
	var seen map[string]struct {
		Prompt, Completion, Unseen int64
		TwinPrompt                 int64 `json:"twin_prompt"`
		TwinCompletion             int64 `json:"twin_completion"`
	}
	runPythonCheck(t, 5*time.Minute, &seen, "engines_check.py", "--base-url", "http://"+e.d.api+"/v1", "--chat", "llama", "--chat", "lite",
		"--completions", "llama", "--completions", "lite", "--embed", "embed")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The official Go SDK: the same calls.
	c := openai.NewClient(option.WithBaseURL("http://"+e.d.api+"/v1/"), option.WithAPIKey("sk-test"),
		option.WithMaxRetries(0), option.WithRequestTimeout(2*time.Minute))
	goSeen := map[string]*struct{ prompt, completion int64 }{"llama": {}, "lite": {}, "embed": {}}
	var goTwin struct{ prompt, completion int64 } // lite's stream with usage
	for _, model := range []string{"llama", "lite"} {
		r, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: model, MaxTokens: openai.Int(8),
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello from Go")}})
		if err != nil || len(r.Choices) != 1 || r.Usage.PromptTokens == 0 {
			t.Fatalf("%s chat: %v %+v", model, err, r)
		}
		goSeen[model].prompt += r.Usage.PromptTokens
		goSeen[model].completion += r.Usage.CompletionTokens
		for _, include := range []bool{true, false} {
			p := openai.ChatCompletionNewParams{Model: model, MaxTokens: openai.Int(8),
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("stream from Go")}}
			if include {
				p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			}
			s := c.Chat.Completions.NewStreaming(ctx, p)
			chunks, withUsage := 0, false
			for s.Next() {
				chunks++
				if u := s.Current().Usage; u.TotalTokens > 0 {
					withUsage = true
					goSeen[model].prompt += u.PromptTokens
					goSeen[model].completion += u.CompletionTokens
					if model == "lite" {
						goTwin.prompt, goTwin.completion = u.PromptTokens, u.CompletionTokens
					}
				}
			}
			if s.Err() != nil || chunks < 2 || withUsage != include {
				t.Fatalf("%s stream include_usage=%v: err %v, %d chunks, usage seen %v", model, include, s.Err(), chunks, withUsage)
			}
		}
		comp, err := c.Completions.New(ctx, openai.CompletionNewParams{Model: openai.CompletionNewParamsModel(model), MaxTokens: openai.Int(8),
			Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("the model gate")}})
		if err != nil || len(comp.Choices) != 1 {
			t.Fatalf("%s completion: %v", model, err)
		}
		goSeen[model].prompt += comp.Usage.PromptTokens
		goSeen[model].completion += comp.Usage.CompletionTokens
	}
	emb, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "embed",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"hello world", "cache"}}})
	if err != nil || len(emb.Data) != 2 || len(emb.Data[0].Embedding) != 256 {
		t.Fatalf("embeddings: %v", err)
	}
	goSeen["embed"].prompt += emb.Usage.PromptTokens

	metric := func(model, typ, src string) int64 {
		return int64(metricValue(t, e.d.admin, fmt.Sprintf(`modelgate_tokens_total{model=%q,type=%q,source=%q}`, model, typ, src)))
	}
	// llama-server: modelgate's counters equal the engines' own counts
	// (every request, the streams whose client saw no usage included).
	gotIn, gotOut := metric("llama", "input", "usage"), metric("llama", "output", "usage")
	var engIn, engOut int64
	// llama-server updates its counters after each slot is released.
	testkit.Await(10*time.Second, 200*time.Millisecond, func() bool {
		engIn = prompts() - promptBefore
		engOut = engineCounter(t, e.llamas, "llamacpp:tokens_predicted_total") - predictedBefore
		return gotIn == engIn && gotOut == engOut
	})
	if gotIn != engIn || gotOut != engOut {
		t.Errorf("llama tokens: modelgate counted in=%d out=%d, the llama-servers counted in=%d out=%d", gotIn, gotOut, engIn, engOut)
	}
	// What the clients saw is part of it.
	if seenIn := seen["llama"].Prompt + goSeen["llama"].prompt; seenIn > gotIn || seenIn == 0 {
		t.Errorf("llama: clients saw %d input tokens, modelgate counted %d", seenIn, gotIn)
	}
	// LiteLLM's mock usage depends only on the request: each stream whose
	// client saw no usage was counted as its twin with usage reported.
	wantIn := seen["lite"].Prompt + goSeen["lite"].prompt + seen["lite"].TwinPrompt + goTwin.prompt
	wantOut := seen["lite"].Completion + goSeen["lite"].completion + seen["lite"].TwinCompletion + goTwin.completion
	if seen["lite"].Unseen != 1 || goTwin.prompt == 0 {
		t.Fatalf("lite: %d Python streams without usage, Go twin %+v", seen["lite"].Unseen, goTwin)
	}
	if in, out := metric("lite", "input", "usage"), metric("lite", "output", "usage"); in != wantIn || out != wantOut {
		t.Errorf("lite tokens: modelgate counted in=%d out=%d, LiteLLM reported in=%d out=%d", in, out, wantIn, wantOut)
	}
	if in, want := metric("embed", "input", "usage"), seen["embed"].Prompt+goSeen["embed"].prompt; in != want {
		t.Errorf("embed input tokens: modelgate counted %d, llama-server reported %d", in, want)
	}
	for _, model := range []string{"llama", "lite", "embed"} {
		if est := metric(model, "input", "estimated") + metric(model, "output", "estimated"); est != 0 {
			t.Errorf("%s: %d tokens estimated, want all from usage", model, est)
		}
	}
}

// An instance whose metadata.model lists a model serves only that model:
// the two llama-servers are one service "duo", tiny-1 and tiny-2 each.
func (e *realEngines) testMetadataModel(t *testing.T) {
	c := e.d.client()
	ctx := context.Background()
	for model, want := range map[string]string{"tiny-1": "tiny-1", "two": "tiny-2", "tiny-2": "tiny-2"} {
		for i := range 6 {
			r, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: model, MaxTokens: openai.Int(2),
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("which one " + strconv.Itoa(i))}})
			if err != nil {
				t.Fatalf("%s: %v", model, err)
			}
			if r.Model != want {
				t.Fatalf("%s was served by the llama-server of %s, want only %s", model, r.Model, want)
			}
		}
	}
	ids := modelIDs(ctx, t, c)
	for _, id := range []string{"tiny-1", "two", "tiny-2", "llama", "lite", "embed"} {
		if !strings.Contains(","+strings.Join(ids, ",")+",", ","+id+",") {
			t.Fatalf("/v1/models %v lacks %s", ids, id)
		}
	}
}

// The README's curl examples, run as written (no Content-Type: curl -d
// sends a form type), against llama-server through modelgate.
func (e *realEngines) testREADMECurl(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^curl .*localhost:8080/v1/.*$`)
	examples := re.FindAllString(string(readme), -1)
	if len(examples) < 3 {
		t.Fatalf("README has %d curl examples against localhost:8080, want the chat, stream and models ones", len(examples))
	}
	for _, ex := range examples {
		line := strings.ReplaceAll(ex, "localhost:8080", e.d.api)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-c", line+` -sS -o /dev/stdout -w '\n%{http_code} %{content_type}'`)
		out, err := cmd.CombinedOutput()
		cancel()
		body := strings.TrimSpace(string(out))
		last := body[strings.LastIndex(body, "\n")+1:]
		if err != nil || !strings.HasPrefix(last, "200 ") {
			t.Fatalf("README example %q: %v\n%s", ex, err, out)
		}
		if strings.Contains(ex, "chat/completions") && !strings.Contains(body, `"choices"`) {
			t.Fatalf("README example %q: no choices in\n%s", ex, out)
		}
	}
}

// Requests separated by idle gaps of 0, 2, 6, 12 and 31 s to each real
// server, streamed and not, with the default idle timeout and with one
// longer than the servers' keep-alive: no error, no breaker failure. The
// sequences run at once, so the test takes about the sum of the gaps.
func (e *realEngines) testIdleGaps(t *testing.T) {
	gaps := []time.Duration{0, 2 * time.Second, 6 * time.Second, 12 * time.Second, 31 * time.Second}
	failuresBefore := e.breakerFailures()
	c := e.d.client()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	for _, model := range []string{"llama-gap", "lite-gap", "llama-keep", "lite-keep"} {
		for _, stream := range []bool{false, true} {
			wg.Go(func() {
				for i, gap := range gaps {
					time.Sleep(gap) // the idle gap is what is under test
					err := gapRequest(c, model, stream, i)
					if err != nil {
						mu.Lock()
						errs = append(errs, fmt.Sprintf("%s stream=%v after %s idle: %v", model, stream, gap, err))
						mu.Unlock()
					}
				}
			})
		}
	}
	wg.Wait()
	for _, e := range errs {
		t.Error(e)
	}
	if f := e.breakerFailures() - failuresBefore; f != 0 {
		t.Errorf("%d breaker failures recorded during the idle gaps, want 0", f)
	}
	// With connections kept past the servers' keep-alive, the gaps over
	// 5 s met closed connections: each was sent again on a fresh one.
	var reconnects float64
	for line := range strings.Lines(string(scrape(t, e.d.admin))) {
		if strings.HasPrefix(line, "modelgate_upstream_reconnects_total{") {
			f, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			reconnects += f
		}
	}
	if reconnects == 0 {
		t.Errorf("no reconnects counted: the long-idle routes never met a connection the servers closed")
	}
	t.Logf("idle gaps %v: %d sequences, 0 errors, %v reconnects", gaps, 8, reconnects)
}

func gapRequest(c openai.Client, model string, stream bool, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := openai.ChatCompletionNewParams{Model: model, MaxTokens: openai.Int(4),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("gap " + strconv.Itoa(i))}}
	if !stream {
		r, err := c.Chat.Completions.New(ctx, p)
		if err == nil && len(r.Choices) != 1 {
			err = fmt.Errorf("%d choices", len(r.Choices))
		}
		return err
	}
	s := c.Chat.Completions.NewStreaming(ctx, p)
	n := 0
	for s.Next() {
		n++
	}
	if s.Err() == nil && n == 0 {
		return fmt.Errorf("empty stream")
	}
	return s.Err()
}
