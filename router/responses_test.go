package router

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/modelgate/modelgate/internal/mockllm"
)

// TestResponses: /v1/responses is routed by its body's model like chat —
// upstream_model rewrite, usage from the reply's input_tokens and
// output_tokens and from a stream's response.completed, events relayed as
// they come, no stream_options added.
func TestResponses(t *testing.T) {
	g := newGateway(t, Config{Routes: []Route{{Model: "resp", Service: "qwen", UpstreamModel: "Qwen2.5"}}})
	m := g.mocks("qwen", 1, mockllm.Config{StreamChunks: 16, ReplyWords: 16, ChunkGap: 20 * time.Millisecond}, nil)[0]

	resp := g.do("POST", "/v1/responses", `{"model":"resp","input":"one two three","max_output_tokens":5}`)
	if resp.StatusCode() != 200 || gjson.GetBytes(resp.Body(), "object").Str != "response" ||
		gjson.GetBytes(resp.Body(), "model").Str != "Qwen2.5" {
		t.Fatalf("%d %s", resp.StatusCode(), resp.Body())
	}
	in := g.metric(`modelgate_tokens_total{model="resp",type="input",source="usage"}`)
	out := g.metric(`modelgate_tokens_total{model="resp",type="output",source="usage"}`)
	if in != 3 || out != 5 { // 3 words in; max_output_tokens 5 cuts the 16 words
		t.Fatalf("tokens in %v out %v, want 3 and 5", in, out)
	}

	begin := time.Now()
	events := streamPost(t, g.addr, "/v1/responses", `{"model":"resp","input":"four five","stream":true}`)
	if strings.Contains(string(m.LastRequest()), "stream_options") {
		t.Errorf("stream_options sent to a Responses endpoint: %s", m.LastRequest())
	}
	var deltas []event
	for _, e := range events {
		if gjson.Get(e.data, "type").Str == "response.output_text.delta" {
			deltas = append(deltas, e)
		}
	}
	last := events[len(events)-1].data
	if len(deltas) != 16 || gjson.Get(last, "type").Str != "response.completed" || strings.Contains(last, "[DONE]") {
		t.Fatalf("%d deltas, last %s", len(deltas), last)
	}
	// Buffered events would arrive together at the end: a spread near 0.
	if spread := deltas[15].at.Sub(deltas[0].at); spread < 15*20*time.Millisecond*8/10 {
		t.Errorf("events bunched: first after %v, spread %v", deltas[0].at.Sub(begin), spread)
	}
	in = g.metric(`modelgate_tokens_total{model="resp",type="input",source="usage"}`)
	out = g.metric(`modelgate_tokens_total{model="resp",type="output",source="usage"}`)
	if in != 3+2 || out != 5+16 {
		t.Fatalf("after the stream: tokens in %v out %v, want 5 and 21", in, out)
	}
	if g.metric(`modelgate_ttft_seconds_count{model="resp"}`) != 1 {
		t.Error("TTFT not taken from the first delta")
	}
	if v := g.metric(`modelgate_requests_total{model="resp",code="200",type="stream"}`); v != 1 {
		t.Errorf("stream requests %v", v)
	}
}

// TestResponsesFailures: retries before the first byte; a stream cut
// before response.completed ends with an error event; a body the router
// refuses never reaches the instance; the key's ACL holds on the body's
// model.
func TestResponsesFailures(t *testing.T) {
	g := newGateway(t, Config{
		Routes:    []Route{{Model: "resp", Service: "qwen", Retries: 1}, {Model: "other", Service: "qwen"}},
		Consumers: []Consumer{{Name: "a", KeySHA256: sha256Hex("key-a"), Models: []string{"resp"}}},
	})
	ms := g.mocks("qwen", 2, mockllm.Config{StreamChunks: 8}, nil)
	ms[0].Set(func(c *mockllm.Config) { c.FailRate, c.FailStatus = 1, 503 })
	key := []string{"Authorization", "Bearer key-a"}
	for range 10 {
		resp := g.do("POST", "/v1/responses", `{"model":"resp","input":"hi"}`, key...)
		if resp.StatusCode() != 200 || string(resp.Header.Peek("X-Mock-Instance")) != "qwen-1" {
			t.Fatalf("%d from %s: %s", resp.StatusCode(), resp.Header.Peek("X-Mock-Instance"), resp.Body())
		}
	}
	if ms[0].Requests() == 0 {
		t.Fatal("the failing instance was never tried: retries not exercised")
	}
	ms[0].Set(func(c *mockllm.Config) { c.FailRate = 0 })
	for _, m := range ms {
		m.SetMode(mockllm.ModeCloseMidStream)
	}
	req, _ := http.NewRequest("POST", "http://"+g.addr+"/v1/responses", strings.NewReader(`{"model":"resp","input":"hi","stream":true}`))
	req.Header.Set("Authorization", "Bearer key-a")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "response.output_text.delta") || !strings.Contains(string(body), "stream interrupted") ||
		strings.Contains(string(body), "response.completed") {
		t.Errorf("cut stream:\n%s", body)
	}
	for _, m := range ms {
		m.SetMode(mockllm.ModeNormal)
	}

	before := ms[0].Requests() + ms[1].Requests()
	refused := []struct {
		body   string
		status int
		code   string
	}{
		{`{"model":"other","input":"hi"}`, 403, "model_not_allowed"},
		{`{"model":"resp","model":"other","input":"hi"}`, 400, "duplicate_key"},
		{`{"input":"hi"}`, 400, "missing_model"},
		{`{"model":"resp","input":"hi","stream":"yes"}`, 400, "invalid_type"},
		{`{"model":"nope","input":"hi"}`, 404, "model_not_found"},
	}
	for _, tt := range refused {
		resp := g.do("POST", "/v1/responses", tt.body, key...)
		if resp.StatusCode() != tt.status || gjson.GetBytes(resp.Body(), "error.code").Str != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.body, resp.StatusCode(), resp.Body(), tt.status, tt.code)
		}
	}
	if resp := g.do("GET", "/v1/responses", "", key...); resp.StatusCode() != 405 {
		t.Errorf("GET /v1/responses: %d", resp.StatusCode())
	}
	if after := ms[0].Requests() + ms[1].Requests(); after != before {
		t.Errorf("%d refused requests reached an instance", after-before)
	}
}

// TestResponsesPrefixAffinity: with policy engine a Responses request's
// input is its prompt: turns of one conversation stay on one instance.
func TestResponsesPrefixAffinity(t *testing.T) {
	g := newGateway(t, Config{Routes: []Route{{Model: "resp", Service: "qwen", Policy: "engine"}}})
	g.mocks("qwen", 3, mockllm.Config{}, nil)
	doc := strings.Repeat("the conversation's long shared document. ", 200)
	count := map[string]int{}
	for i := range 20 {
		body := `{"model":"resp","input":[{"role":"system","content":"` + doc + `"},{"role":"user","content":"question ` + strconv.Itoa(i) + `"}]}`
		resp := g.do("POST", "/v1/responses", body)
		if resp.StatusCode() != 200 {
			t.Fatalf("%d %s", resp.StatusCode(), resp.Body())
		}
		count[string(resp.Header.Peek("X-Mock-Instance"))]++
	}
	most := 0
	for _, n := range count {
		most = max(most, n)
	}
	if most < 18 {
		t.Errorf("one conversation spread over the instances: %v", count)
	}
}
