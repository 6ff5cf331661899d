package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/nacostest"
	"github.com/modelgate/modelgate/internal/testkit"
	"github.com/modelgate/modelgate/router"
)

// metricValue reads one series from the daemon's /metrics.
func metricValue(t *testing.T, admin, series string) float64 {
	t.Helper()
	for line := range strings.Lines(string(scrape(t, admin))) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// TestOpenAIGoClientEndToEnd drives every API through modelgate with the
// official Go client against instances in the real Nacos, and checks that
// the token counters equal the usage the instances reported.
func TestOpenAIGoClientEndToEnd(t *testing.T) {
	addr := nacostest.Addr(t)
	group := testkit.UniqueGroup("E2EGO")
	m := startMock(t, "m", mockllm.Config{StreamChunks: 6})
	e := startMock(t, "e", mockllm.Config{})
	nacostest.Register(t, addr, group, "qwen", "127.0.0.1", port(m.Addr()), 1, nil)
	nacostest.Register(t, addr, group, "bge", "127.0.0.1", port(e.Addr()), 1, nil)
	cfg := nacosConfig(addr, group, "qwen", "keep")
	cfg.Router.Routes = append(cfg.Router.Routes, router.Route{Model: "embed", Service: "bge"})
	d := startDaemon(t, cfg)
	d.waitPool(t, discovery.ServiceKey(group, "qwen"), 10*time.Second, func(l []*discovery.Instance) bool { return len(l) == 1 })
	d.waitPool(t, discovery.ServiceKey(group, "bge"), 10*time.Second, func(l []*discovery.Instance) bool { return len(l) == 1 })
	ctx := context.Background()
	c := d.client()

	var in, out int64
	reply, err := chat(ctx, c, "chat")
	if err != nil {
		t.Fatal(err)
	}
	in, out = in+reply.Usage.PromptTokens, out+reply.Usage.CompletionTokens

	// A stream whose client did not ask for usage: no usage chunk reaches it,
	// but modelgate still counts the instance's usage.
	s := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "chat",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("stream please")}})
	var text strings.Builder
	for s.Next() {
		ch := s.Current()
		if ch.Usage.TotalTokens > 0 {
			t.Fatal("usage chunk reached a client that did not ask for it")
		}
		if len(ch.Choices) > 0 {
			text.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	if s.Err() != nil || text.Len() == 0 {
		t.Fatalf("stream: %v, %q", s.Err(), text.String())
	}
	in, out = in+3, out+int64(len(strings.Fields(text.String()))) // the mock: words + 1 per message

	comp, err := c.Completions.New(ctx, openai.CompletionNewParams{Model: "chat",
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("say something")}})
	if err != nil || comp.Choices[0].Text == "" {
		t.Fatalf("completion: %v", err)
	}
	in, out = in+comp.Usage.PromptTokens, out+comp.Usage.CompletionTokens

	emb, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "embed",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("vectors")}})
	if err != nil || len(emb.Data) != 1 || len(emb.Data[0].Embedding) != mockllm.EmbeddingDim {
		t.Fatalf("embeddings: %v", err)
	}

	ids := modelIDs(ctx, t, c)
	if strings.Join(ids, ",") != "chat,embed" {
		t.Fatalf("models: %v", ids)
	}

	gotIn := metricValue(t, d.admin, `modelgate_tokens_total{model="chat",type="input",source="usage"}`)
	gotOut := metricValue(t, d.admin, `modelgate_tokens_total{model="chat",type="output",source="usage"}`)
	if int64(gotIn) != in || int64(gotOut) != out {
		t.Fatalf("tokens counted in=%v out=%v, instances reported in=%d out=%d", gotIn, gotOut, in, out)
	}
	if embIn := metricValue(t, d.admin, `modelgate_tokens_total{model="embed",type="input",source="usage"}`); int64(embIn) != emb.Usage.PromptTokens {
		t.Fatalf("embedding tokens %v, reported %d", embIn, emb.Usage.PromptTokens)
	}
	if n := metricValue(t, d.admin, `modelgate_ttft_seconds_count{model="chat"}`); n != 1 {
		t.Fatalf("TTFT histogram count %v, want the one stream", n)
	}
}
