package mockllm

import (
	"net/http"
	"strings"
	"testing"
)

func TestChatReply(t *testing.T) {
	tests := []struct {
		name        string
		cfg         Config
		body        string
		wantModel   string
		wantContent string
		wantFinish  string
		wantUsage   *usage
	}{
		{
			name:        "string contents",
			body:        `{"model":"llama-3","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"  hello   there\nfriend "}]}`,
			wantModel:   "llama-3",
			wantContent: "lorem ipsum dolor sit amet consectetur adipiscing elit",
			wantFinish:  "stop",
			wantUsage:   &usage{PromptTokens: 2 + 1 + 3 + 1, CompletionTokens: 8, TotalTokens: 15},
		},
		{
			name:        "array of parts and null content",
			cfg:         Config{ReplyWords: 3},
			body:        `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"one two"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"three"}]},{"role":"assistant","content":null}]}`,
			wantModel:   "m",
			wantContent: "lorem ipsum dolor",
			wantFinish:  "stop",
			wantUsage:   &usage{PromptTokens: 3 + 1 + 0 + 1, CompletionTokens: 3, TotalTokens: 8},
		},
		{
			name:        "max_tokens cuts the reply",
			body:        `{"model":"m","max_tokens":2,"messages":[{"role":"user","content":"hi"}]}`,
			wantModel:   "m",
			wantContent: "lorem ipsum",
			wantFinish:  "length",
			wantUsage:   &usage{PromptTokens: 2, CompletionTokens: 2, TotalTokens: 4},
		},
		{
			name:        "max_completion_tokens cuts the reply",
			body:        `{"model":"m","max_completion_tokens":1,"messages":[]}`,
			wantModel:   "m",
			wantContent: "lorem",
			wantFinish:  "length",
			wantUsage:   &usage{PromptTokens: 0, CompletionTokens: 1, TotalTokens: 1},
		},
		{
			name:        "long reply cycles the vocabulary",
			cfg:         Config{ReplyWords: 21},
			body:        `{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
			wantModel:   "m",
			wantContent: "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua lorem ipsum",
			wantFinish:  "stop",
			wantUsage:   &usage{PromptTokens: 2, CompletionTokens: 21, TotalTokens: 23},
		},
		{
			name:        "NoUsage omits usage",
			cfg:         Config{NoUsage: true},
			body:        `{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
			wantModel:   "m",
			wantContent: "lorem ipsum dolor sit amet consectetur adipiscing elit",
			wantFinish:  "stop",
		},
		{
			name:        "missing model is the instance name",
			cfg:         Config{Name: "inst-a"},
			body:        `{"messages":[{"role":"user","content":"hi \"quoted\""}]}`,
			wantModel:   "inst-a",
			wantContent: "lorem ipsum dolor sit amet consectetur adipiscing elit",
			wantFinish:  "stop",
			wantUsage:   &usage{PromptTokens: 3, CompletionTokens: 8, TotalTokens: 11},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tt.cfg)
			c := newClient(t, testTimeout)
			resp, b := post(t, c, s, "/v1/chat/completions", tt.body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			r := decode[chatReply](t, b)
			name := s.Config().Name
			if !strings.HasPrefix(r.ID, "chatcmpl-") || r.Object != "chat.completion" || r.Created == 0 {
				t.Errorf("id/object/created = %q/%q/%d", r.ID, r.Object, r.Created)
			}
			if r.Model != tt.wantModel || r.SystemFingerprint != name {
				t.Errorf("model/fingerprint = %q/%q, want %q/%q", r.Model, r.SystemFingerprint, tt.wantModel, name)
			}
			if len(r.Choices) != 1 {
				t.Fatalf("choices = %d", len(r.Choices))
			}
			ch := r.Choices[0]
			if ch.Message.Role != "assistant" || ch.Message.Content != tt.wantContent {
				t.Errorf("message = %q %q, want assistant %q", ch.Message.Role, ch.Message.Content, tt.wantContent)
			}
			if ch.FinishReason == nil || *ch.FinishReason != tt.wantFinish {
				t.Errorf("finish_reason = %v, want %q", ch.FinishReason, tt.wantFinish)
			}
			switch {
			case tt.wantUsage == nil && r.Usage != nil:
				t.Errorf("usage = %+v, want none", *r.Usage)
			case tt.wantUsage != nil && (r.Usage == nil || *r.Usage != *tt.wantUsage):
				t.Errorf("usage = %+v, want %+v", r.Usage, *tt.wantUsage)
			}
			if got := string(s.LastRequest()); got != tt.body {
				t.Errorf("LastRequest = %q", got)
			}
			if s.Requests() != 1 {
				t.Errorf("Requests = %d, want 1", s.Requests())
			}
		})
	}
}

func TestCompletionReply(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantText   string
		wantPrompt int
	}{
		{"string prompt", `{"model":"m","prompt":"say  this\tnow"}`, "lorem ipsum dolor sit amet consectetur adipiscing elit", 3},
		{"array of prompts", `{"model":"m","prompt":["a b","c"]}`, "lorem ipsum dolor sit amet consectetur adipiscing elit", 3},
		{"token ids", `{"model":"m","prompt":[1,2,3,4]}`, "lorem ipsum dolor sit amet consectetur adipiscing elit", 4},
		{"max_tokens", `{"model":"m","prompt":"x","max_tokens":3}`, "lorem ipsum dolor", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Config{})
			c := newClient(t, testTimeout)
			resp, b := post(t, c, s, "/v1/completions", tt.body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			r := decode[chatReply](t, b)
			if !strings.HasPrefix(r.ID, "cmpl-") || r.Object != "text_completion" || r.Model != "m" {
				t.Errorf("id/object/model = %q/%q/%q", r.ID, r.Object, r.Model)
			}
			if len(r.Choices) != 1 || r.Choices[0].Text != tt.wantText {
				t.Fatalf("choices = %+v, want text %q", r.Choices, tt.wantText)
			}
			words := len(strings.Fields(tt.wantText))
			want := usage{PromptTokens: tt.wantPrompt, CompletionTokens: words, TotalTokens: tt.wantPrompt + words}
			if r.Usage == nil || *r.Usage != want {
				t.Errorf("usage = %+v, want %+v", r.Usage, want)
			}
		})
	}
}

func TestReplyHeaders(t *testing.T) {
	tests := []struct {
		name, method, path string
		hdr                []string
		wantAuth, wantID   string
	}{
		{"chat with credentials", http.MethodPost, "/v1/chat/completions", []string{"Authorization", "Bearer sk-123", "X-Request-Id", "req-9"}, "Bearer sk-123", "req-9"},
		{"models without", http.MethodGet, "/v1/models", nil, "", ""},
		{"echo", http.MethodPost, "/v1/files", []string{"Authorization", "Bearer x"}, "Bearer x", ""},
		{"error reply", http.MethodPost, "/nope", []string{"X-Request-Id", "r"}, "", "r"},
	}
	s := startServer(t, Config{Name: "inst-7"})
	c := newClient(t, testTimeout)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := do(c, s, tt.method, tt.path, `{"messages":[]}`, tt.hdr...)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			h := resp.Header
			if got := h.Get("X-Mock-Instance"); got != "inst-7" {
				t.Errorf("X-Mock-Instance = %q", got)
			}
			if got := h.Get("X-Mock-Authorization"); got != tt.wantAuth {
				t.Errorf("X-Mock-Authorization = %q, want %q", got, tt.wantAuth)
			}
			if got := h.Get("X-Mock-Request-Id"); got != tt.wantID {
				t.Errorf("X-Mock-Request-Id = %q, want %q", got, tt.wantID)
			}
		})
	}
}
