package router

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

func FuzzInspectChunk(f *testing.F) {
	f.Add([]byte(`{"choices":[{"index":0,"delta":{"content":"hi"}}]}`))
	f.Add([]byte(`{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}`))
	f.Add([]byte(`{"choices":[{"text":"x"}],"usage":null}`))
	f.Add([]byte(`{"choices":[{"delta":{"tool_calls":[{"id":"1"}]}}]}`))
	f.Add([]byte(`[DONE]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := inspectChunk(data)
		if c.usageOnly && !c.usage.found {
			t.Fatal("usage-only chunk without usage")
		}
		if c.content < 0 || c.content > len(data) {
			t.Fatalf("content %d of a %d-byte chunk", c.content, len(data))
		}
	})
}

func FuzzUsageFromJSON(f *testing.F) {
	f.Add([]byte(`{"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}`))
	f.Add([]byte(`{"object":"list","data":[],"usage":{"prompt_tokens":4,"total_tokens":4}}`))
	f.Add([]byte(`{"usage":"none"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		u := usageFromJSON(body)
		if u.found && !gjson.GetBytes(body, "usage").IsObject() {
			t.Fatalf("usage found in %q", body)
		}
		_ = promptBytes(body)
	})
}

// FuzzModelRewrite checks that rewriting "model" the way the router does
// keeps the body valid JSON, sets the model and touches nothing else.
func FuzzModelRewrite(f *testing.F) {
	f.Add([]byte(`{"model":"chat","messages":[{"role":"user","content":"hi"}],"stream":true}`), "Qwen2.5-7B")
	f.Add([]byte(`{"messages":[],"model":"a\"b"}`), "x/y:z")
	f.Add([]byte(` { "model" : "m" , "n" : 1 } `), "")
	f.Fuzz(func(t *testing.T, body []byte, model string) {
		if !gjson.ValidBytes(body) || gjson.GetBytes(body, "model").Type != gjson.String {
			return // the router answers 400 before rewriting
		}
		if !utf8.ValidString(model) {
			return // upstream_model comes from YAML, which is UTF-8
		}
		out, err := sjson.SetBytes(body, "model", model)
		if err != nil {
			t.Fatalf("rewrite failed: %v", err)
		}
		if !gjson.ValidBytes(out) {
			t.Fatalf("rewrite made invalid JSON: %q", out)
		}
		if got := gjson.GetBytes(out, "model").Str; got != model {
			t.Fatalf("model = %q, want %q", got, model)
		}
		// Only the model's value changed: the bytes around it are the same.
		old := gjson.GetBytes(body, "model")
		if old.Index > 0 {
			before, after := body[:old.Index], body[old.Index+len(old.Raw):]
			if !bytes.HasPrefix(out, before) || !bytes.HasSuffix(out, after) {
				t.Fatalf("bytes outside the model value changed:\n%q\n%q", body, out)
			}
		}
	})
}
