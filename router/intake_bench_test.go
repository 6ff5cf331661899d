package router

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/modelgate/modelgate/internal/reqjson"
)

// BenchmarkIntake compares, side by side, the request reading the router
// did before reqjson (gjson: validate, then a pass per field, sjson for the
// include_usage rewrite) with reqjson's one pass and span rewrite, on a
// short and a 16 KiB chat body. Both legs extract the same fields.
func BenchmarkIntake(b *testing.B) {
	bodies := map[string][]byte{
		"short": []byte(`{"model":"chat","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"hello there"}],"stream":true,"temperature":0.7,"max_tokens":64}`),
		"16KiB": []byte(`{"model":"chat","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"` +
			strings.Repeat("lorem ipsum dolor sit amet ", 600) + `"}],"stream":true,"temperature":0,"max_tokens":64,"user":"u-1"}`),
	}
	for _, size := range []string{"short", "16KiB"} {
		body := bodies[size]
		b.Run("gjson/"+size, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for range b.N {
				if f := legacyIntake(body); f.model != "chat" || !f.stream {
					b.Fatal(f)
				}
			}
		})
		b.Run("reqjson/"+size, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			var r reqjson.Request
			buf := make([]byte, 0, len(body)+64)
			for range b.N {
				if err := reqjson.Parse(body, 0, &r); err != nil || r.Model != "chat" || !r.Stream {
					b.Fatal(err)
				}
				if r.Stream && !r.IncludeUsage {
					buf = r.AppendRewrite(buf[:0], body, "", true)
				}
			}
		})
	}
}

type legacyFields struct {
	model              string
	stream, usage, t0  bool
	promptLen, maxToks int
	out                []byte
}

// legacyIntake is the router's request reading before reqjson.
func legacyIntake(body []byte) legacyFields {
	var f legacyFields
	if !gjson.ValidBytes(body) {
		return f
	}
	m := gjson.GetBytes(body, "model")
	if m.Type != gjson.String {
		return f
	}
	f.model = m.Str
	f.stream = gjson.GetBytes(body, "stream").Bool()
	f.promptLen = promptBytes(body)
	for _, v := range gjson.GetManyBytes(body, "max_tokens", "max_completion_tokens") {
		if v.Exists() && v.Int() > 0 {
			f.maxToks = int(v.Int())
			break
		}
	}
	t := gjson.GetBytes(body, "temperature")
	f.t0 = t.Type == gjson.Number && t.Num == 0
	f.usage = gjson.GetBytes(body, "stream_options.include_usage").Bool()
	if f.stream && !f.usage {
		f.out, _ = sjson.SetBytes(body, "stream_options.include_usage", true)
	}
	return f
}

// promptBytes is the size of the text a request asks the model to read.
func promptBytes(body []byte) int {
	res := gjson.GetManyBytes(body, "messages", "prompt", "input")
	n := 0
	for _, r := range res {
		if !r.Exists() {
			continue
		}
		r.ForEach(func(_, v gjson.Result) bool {
			n += textBytes(v)
			return true
		})
		if r.Type == gjson.String {
			n += len(r.Str)
		}
	}
	return n
}

// textBytes counts the text in a message, a prompt part or a string.
func textBytes(v gjson.Result) int {
	switch {
	case v.Type == gjson.String:
		return len(v.Str)
	case v.IsObject():
		c := v.Get("content")
		if c.Type == gjson.String {
			return len(c.Str)
		}
		n := 0
		c.ForEach(func(_, part gjson.Result) bool {
			n += len(part.Get("text").Str)
			return true
		})
		return n
	}
	return 0
}
