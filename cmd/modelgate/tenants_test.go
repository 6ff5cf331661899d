package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/reqjson"
	"github.com/modelgate/modelgate/router"
)

// TestTenantsKeptApart runs the daemon over a static pool of two mock
// instances with two consumers: A may use cheap only, B cheap and premium.
// Each bypass a hostile A could try is closed — premium never sees a
// request from A — and B never receives A's cached reply.
func TestTenantsKeptApart(t *testing.T) {
	cheap := startMock(t, "cheap", mockllm.Config{})
	premium := startMock(t, "premium", mockllm.Config{})
	d := staticDaemon(t, &Config{Router: router.Config{
		Routes:      []router.Route{{Model: "cheap", UpstreamModel: "cheap-upstream"}, {Model: "premium"}},
		Passthrough: []string{"/v1/files"},
		Consumers: []router.Consumer{
			{Name: "a", KeySHA256: sha256Hex("key-a"), Models: []string{"cheap"}},
			{Name: "b", KeySHA256: sha256Hex("key-b"), Models: []string{"cheap", "premium"}},
		},
	}}, cheap, premium)
	raw := func(key, path, contentType, body string, headers ...string) (int, string) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.Header.SetMethod("POST")
		req.SetRequestURI("http://" + d.api + path)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.SetContentType(contentType)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		req.SetBodyString(body)
		if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode(), gjson.GetBytes(resp.Body(), "error.code").Str
	}
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	for _, tc := range []struct {
		name, path, ct, body string
		headers              []string
		status               int
		code                 string
	}{
		{"duplicate model", "/v1/chat/completions", "application/json", `{"model":"cheap","model":"premium",` + msgs + `}`, nil, 400, "duplicate_key"},
		{"escaped duplicate model", "/v1/chat/completions", "application/json", `{"model":"cheap","mo\u0064el":"premium",` + msgs + `}`, nil, 400, "duplicate_key"},
		{"escaped model", "/v1/chat/completions", "application/json", `{"mo\u0064el":"premium",` + msgs + `}`, nil, 403, "model_not_allowed"},
		{"duplicate in completions", "/v1/completions", "application/json", `{"model":"premium","prompt":"x","model":"cheap"}`, nil, 400, "duplicate_key"},
		{"duplicate in embeddings", "/v1/embeddings", "application/json", `{"input":"x","model":"cheap","\u006dodel":"premium"}`, nil, 400, "duplicate_key"},
		{"pass-through header and body disagree", "/v1/files", "application/json", `{"model":"premium"}`, []string{"X-Modelgate-Model", "cheap"}, 400, "model_mismatch"},
		{"pass-through JSON as text", "/v1/files", "text/plain", `{"model":"premium"}`, []string{"X-Modelgate-Model", "cheap"}, 400, "model_mismatch"},
		// Go's encoding/json (the mock, Go-based engines) reads "Model" as model.
		{"model in another case", "/v1/chat/completions", "application/json", `{"model":"cheap","Model":"premium",` + msgs + `}`, nil, 400, "duplicate_key"},
		{"model in capitals", "/v1/responses", "application/json", `{"MODEL":"premium","model":"cheap","input":"hi"}`, nil, 400, "duplicate_key"},
		{"pass-through body model in capitals", "/v1/files", "application/json", `{"MODEL":"premium"}`, []string{"X-Modelgate-Model", "cheap"}, 400, "model_mismatch"},
		{"pass-through prefix is a segment", "/v1/filesystem/x", "application/json", `{"model":"cheap"}`, nil, 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, code := raw("key-a", tc.path, tc.ct, tc.body, tc.headers...); status != tc.status || code != tc.code {
				t.Fatalf("%d %q, want %d %q", status, code, tc.status, tc.code)
			}
		})
	}
	// The same through the official SDK, with an extra body field.
	var apiErr *openai.Error
	sdkA := openai.NewClient(option.WithBaseURL("http://"+d.api+"/v1/"), option.WithAPIKey("key-a"), option.WithMaxRetries(0))
	if _, err := sdkA.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "cheap",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}},
		option.WithJSONSet("Model", "premium")); !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "duplicate_key" {
		t.Fatalf("A with a second model key in capitals: %v", err)
	}
	if premium.LastRequest() != nil {
		t.Fatalf("premium received a request from A: %s", premium.LastRequest())
	}

	// The rewrite replaces the one model key every reader saw.
	if status, code := raw("key-a", "/v1/chat/completions", "application/json", `{"mo\u0064el":"cheap",`+msgs+`}`); status != 200 {
		t.Fatalf("escaped cheap: %d %s", status, code)
	}
	var up reqjson.Request
	if err := reqjson.Parse(cheap.LastRequest(), 0, &up); err != nil || up.Model != "cheap-upstream" {
		t.Fatalf("upstream body %s: %v, model %q", cheap.LastRequest(), err, up.Model)
	}

	// The official SDK: A's deterministic request is cached for A only.
	ask := func(key string) (string, string) {
		var hr *http.Response
		c := openai.NewClient(option.WithBaseURL("http://"+d.api+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
		res, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
			Model: "cheap", Temperature: openai.Float(0),
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("what is 2+2?")},
		}, option.WithResponseInto(&hr))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return res.ID, hr.Header.Get("X-Modelgate-Degraded")
	}
	ca := openai.NewClient(option.WithBaseURL("http://"+d.api+"/v1/"), option.WithAPIKey("key-a"), option.WithMaxRetries(0))
	if _, err := ca.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "premium",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}); !strings.Contains(errString(err), "403") {
		t.Fatalf("A asking for premium: %v", err)
	}
	idA, how := ask("key-a")
	if how != "" {
		t.Fatalf("A's first request came from the cache (%q)", how)
	}
	before := cheap.Requests()
	if again, how := ask("key-a"); how != "cache" || again != idA || cheap.Requests() != before {
		t.Fatalf("A's second request: id %q (first %q), degraded %q, upstream requests %d → %d", again, idA, how, before, cheap.Requests())
	}
	idB, how := ask("key-b")
	if how != "" || idB == idA || cheap.Requests() != before+1 {
		t.Fatalf("B got A's cached reply: id %q (A's %q), degraded %q, upstream requests %d → %d", idB, idA, how, before, cheap.Requests())
	}
	// B has its own entry now, and A's is still A's.
	if again, how := ask("key-b"); how != "cache" || again != idB {
		t.Fatalf("B's second request: %q %q", again, how)
	}
	if again, _ := ask("key-a"); again != idA {
		t.Fatalf("A's entry was replaced by B's: %q", again)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
