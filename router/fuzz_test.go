package router

import (
	"testing"

	"github.com/tidwall/gjson"
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
	})
}
