package router

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/mockllm"
)

// TestErrorReplies covers every error reply a client can get: status,
// OpenAI-shaped JSON, and Retry-After where due.
func TestErrorReplies(t *testing.T) {
	key := "sk-team-a"
	cfg := Config{
		MaxBodySize: 1 << 10,
		Routes: []Route{
			{Model: "chat", Service: "qwen"},
			{Model: "empty", Service: "nobody"},
			{Model: "secret", Service: "qwen"},
			{Model: "slow", Service: "slow", Timeout: 100 * time.Millisecond},
			{Model: "dead", Service: "dead"},
		},
		Consumers: []Consumer{{Name: "team-a", KeySHA256: sha256Hex(key), Models: []string{"chat", "empty", "slow", "dead"}}},
	}
	g := newGateway(t, cfg)
	g.mocks("qwen", 1, mockllm.Config{}, nil)
	slow := g.mocks("slow", 1, mockllm.Config{}, nil)
	slow[0].SetMode(mockllm.ModeHang)
	dead := g.mocks("dead", 1, mockllm.Config{}, nil)
	dead[0].SetMode(mockllm.ModeCloseConn)

	auth := []string{"Authorization", "Bearer " + key}
	chat := func(model string) string {
		return `{"model":"` + model + `","messages":[{"role":"user","content":"hi"}]}`
	}
	tests := []struct {
		name       string
		method     string
		path, body string
		headers    []string
		status     int
		typ, code  string
		retryAfter bool
	}{
		{"malformed JSON", "POST", "/v1/chat/completions", `{"model":`, auth, 400, "invalid_request_error", "invalid_json", false},
		{"missing model", "POST", "/v1/chat/completions", `{"messages":[]}`, auth, 400, "invalid_request_error", "missing_model", false},
		{"model not a string", "POST", "/v1/chat/completions", `{"model":7}`, auth, 400, "invalid_request_error", "missing_model", false},
		{"no key", "POST", "/v1/chat/completions", chat("chat"), nil, 401, "authentication_error", "invalid_api_key", false},
		{"bad key", "POST", "/v1/chat/completions", chat("chat"), []string{"Authorization", "Bearer nope"}, 401, "authentication_error", "invalid_api_key", false},
		{"model not allowed", "POST", "/v1/chat/completions", chat("secret"), auth, 403, "permission_error", "model_not_allowed", false},
		{"unknown model", "POST", "/v1/chat/completions", chat("gpt-9"), auth, 404, "invalid_request_error", "model_not_found", false},
		{"unknown path", "POST", "/v1/assistants", chat("chat"), auth, 404, "not_found_error", "not_found", false},
		{"wrong method", "GET", "/v1/chat/completions", "", auth, 405, "invalid_request_error", "method_not_allowed", false},
		{"body too large", "POST", "/v1/chat/completions", `{"model":"chat","x":"` + strings.Repeat("a", 2000) + `"}`, auth, 413, "invalid_request_error", "request_too_large", false},
		{"bad tags header", "POST", "/v1/chat/completions", chat("chat"), append([]string{"X-Modelgate-Tags", "gpu"}, auth...), 400, "invalid_request_error", "invalid_tags", false},
		{"no instance", "POST", "/v1/chat/completions", chat("empty"), auth, 503, "service_unavailable", "no_instance", true},
		{"upstream timeout", "POST", "/v1/chat/completions", chat("slow"), auth, 504, "timeout_error", "upstream_timeout", false},
		{"upstream broke", "POST", "/v1/chat/completions", chat("dead"), auth, 502, "server_error", "upstream_error", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := g.do(tt.method, tt.path, tt.body, tt.headers...)
			if resp.StatusCode() != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode(), tt.status, resp.Body())
			}
			var e struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Code    *string `json:"code"`
					Param   *string `json:"param"`
				} `json:"error"`
			}
			if err := json.Unmarshal(resp.Body(), &e); err != nil {
				t.Fatalf("not JSON: %s", resp.Body())
			}
			if e.Error.Type != tt.typ || e.Error.Code == nil || *e.Error.Code != tt.code || e.Error.Message == "" {
				t.Fatalf("error = %+v, want type %s code %s", e.Error, tt.typ, tt.code)
			}
			if ct := string(resp.Header.ContentType()); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			if got := resp.Header.Peek("Retry-After"); (len(got) > 0) != tt.retryAfter {
				t.Errorf("Retry-After = %q, want present=%v", got, tt.retryAfter)
			}
			if len(resp.Header.Peek("X-Request-Id")) == 0 && tt.code != "request_too_large" {
				t.Error("no X-Request-Id on an error reply")
			}
		})
	}
}
