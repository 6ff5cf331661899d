package router

import (
	"testing"

	"github.com/tidwall/gjson"

	"github.com/modelgate/modelgate/internal/mockllm"
)

// TestConfigIsNotAliased: the config in force shares no memory with the
// Config a caller passed to New or Reload, nor with one Config returned.
// The case that used to bite: a Reload refused for one bad field, then the
// caller edits its Config to fix it, and the live routes change with it.
func TestConfigIsNotAliased(t *testing.T) {
	cfg := Config{
		Routes:    []Route{{Model: "chat", Service: "qwen", UpstreamModel: "served-a", Tags: map[string]string{}}},
		Consumers: []Consumer{{Name: "team", KeySHA256: sha256Hex("sk-a"), Models: []string{"chat"}}},
	}
	g := newGateway(t, cfg)
	m := g.mocks("qwen", 1, mockllm.Config{}, nil)
	upstreamModel := func() string {
		t.Helper()
		r := g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[]}`, "Authorization", "Bearer sk-a")
		if r.StatusCode() != 200 {
			t.Fatalf("%d %s", r.StatusCode(), r.Body())
		}
		return gjson.GetBytes(m[0].LastRequest(), "model").Str
	}
	if got := upstreamModel(); got != "served-a" {
		t.Fatalf("upstream model %q", got)
	}

	bad := cfg // shares cfg's slices, as a caller's copy does
	bad.Routes[0].Retries = 99
	bad.Routes[0].UpstreamModel = "from-a-bad-reload"
	if err := g.router.Reload(bad); err == nil {
		t.Fatal("a reload with retries 99 was accepted")
	}
	cfg.Routes[0].UpstreamModel = "edited-after-the-failed-reload"
	cfg.Routes[0].Tags["gpu"] = "none-has-it"
	cfg.Consumers[0].Models[0] = "other"
	if got := upstreamModel(); got != "served-a" {
		t.Fatalf("after a failed reload and an edit of the caller's config, upstream model %q, want served-a", got)
	}

	live := g.router.Config()
	live.Routes[0].UpstreamModel = "edited-copy"
	live.Routes[0].Tags["gpu"] = "none-has-it"
	if got := upstreamModel(); got != "served-a" {
		t.Fatalf("after an edit of Config()'s copy, upstream model %q", got)
	}
	if c := g.router.Config(); c.Routes[0].Retries != 0 || len(c.Routes[0].Tags) != 0 || c.Consumers[0].Models[0] != "chat" {
		t.Fatalf("config in force changed: %+v", c.Routes[0])
	}
}
