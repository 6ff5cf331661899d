package router

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/modelgate/modelgate/internal/mockllm"
)

// hostileCase is one request a hostile client sends, and what it gets.
type hostileCase struct {
	name    string
	method  string // default POST
	path    string
	body    string
	headers []string
	status  int
	code    string // the OpenAI error code; "" for a success
}

// bodyCases are hostile bodies on the model and pass-through paths.
func bodyCases() []hostileCase {
	var cs []hostileCase
	apis := []struct{ path, extra string }{
		{"/v1/chat/completions", `"messages":[{"role":"user","content":"hi"}]`},
		{"/v1/completions", `"prompt":"hi"`},
		{"/v1/embeddings", `"input":"hi"`},
	}
	for _, a := range apis {
		add := func(name, body string, status int, code string) {
			cs = append(cs, hostileCase{name: a.path + " " + name, path: a.path, body: body, status: status, code: code})
		}
		add("duplicate model", `{"model":"cheap","model":"premium",`+a.extra+`}`, 400, "duplicate_key")
		add("escaped duplicate model", `{"model":"cheap",`+a.extra+`,"mo\u0064el":"premium"}`, 400, "duplicate_key")
		add("fully escaped duplicate", `{"\u006d\u006f\u0064\u0065\u006c":"premium","model":"cheap",`+a.extra+`}`, 400, "duplicate_key")
		add("duplicate stream", `{"model":"cheap","stream":false,"stream":true,`+a.extra+`}`, 400, "duplicate_key")
		add("escaped model alone", `{"mo\u0064el":"premium",`+a.extra+`}`, 403, "model_not_allowed")
		add("bad utf-8", "{\"model\":\"cheap\",\"user\":\"\xff\xfe\","+a.extra+"}", 400, "invalid_json")
		add("deep nesting", `{"model":"cheap","x":`+strings.Repeat("[", 65)+strings.Repeat("]", 65)+`}`, 400, "invalid_json")
		add("not an object", `["model","cheap"]`, 400, "invalid_json")
		add("trailing bytes", `{"model":"cheap",`+a.extra+`} {}`, 400, "invalid_json")
		add("model not a string", `{"model":["cheap"],`+a.extra+`}`, 400, "missing_model")
	}
	cs = append(cs,
		hostileCase{name: "stream as a string", path: "/v1/chat/completions", body: `{"model":"cheap","stream":"true","messages":[]}`, status: 400, code: "invalid_type"},
		hostileCase{name: "control character in a string", path: "/v1/chat/completions", body: "{\"model\":\"cheap\",\"messages\":[{\"content\":\"a\x01b\"}]}", status: 400, code: "invalid_json"},
		hostileCase{name: "lone surrogate is decoded, not refused", path: "/v1/chat/completions", body: `{"model":"cheap","user":"\ud800","messages":[{"role":"user","content":"hi"}]}`, status: 200},
		hostileCase{name: "empty body", path: "/v1/chat/completions", body: ``, status: 400, code: "invalid_json"},
	)
	return cs
}

// TestHostileInput sends every hostile case over a real socket, checks its
// status and OpenAI error code, and that the gateway serves a good request
// after each one.
func TestHostileInput(t *testing.T) {
	g := newGateway(t, Config{
		Routes:    []Route{{Model: "cheap"}, {Model: "premium"}},
		Consumers: []Consumer{{Name: "a", KeySHA256: sha256Hex("key-a"), Models: []string{"cheap"}}},
	})
	g.mocks("cheap", 1, mockllm.Config{}, nil)
	g.mocks("premium", 1, mockllm.Config{}, nil)
	for _, tc := range bodyCases() {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "POST"
			}
			resp := g.do(method, tc.path, tc.body, append([]string{"Authorization", "Bearer key-a"}, tc.headers...)...)
			if resp.StatusCode() != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode(), tc.status, resp.Body())
			}
			if code := gjson.GetBytes(resp.Body(), "error.code").Str; code != tc.code {
				t.Fatalf("code %q, want %q: %s", code, tc.code, resp.Body())
			}
			if ok := g.do("POST", "/v1/chat/completions", `{"model":"cheap","messages":[{"role":"user","content":"hi"}]}`,
				"Authorization", "Bearer key-a"); ok.StatusCode() != 200 {
				t.Fatalf("after the case: %d %s", ok.StatusCode(), ok.Body())
			}
		})
	}
}
