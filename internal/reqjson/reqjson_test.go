package reqjson

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		code       ErrorCode
		key        string
		check      func(t *testing.T, r *Request)
	}{
		{name: "plain", body: `{"model":"chat","stream":true,"stream_options":{"include_usage":true},"max_tokens":7,"temperature":0,"n":2,"user":"u1","messages":[{"role":"user","content":"hello"}]}`,
			check: func(t *testing.T, r *Request) {
				if r.Model != "chat" || !r.Stream || !r.IncludeUsage || r.MaxTokens != 7 || r.TemperatureKind != Number || r.Temperature != 0 || r.N != 2 || r.User != "u1" || r.PromptBytes != 5 {
					t.Fatalf("%+v", r)
				}
			}},
		{name: "prompt span of messages", body: `{"messages": [{"role":"user","content":"hi"}] ,"model":"m"}`,
			check: func(t *testing.T, r *Request) {
				body := `{"messages": [{"role":"user","content":"hi"}] ,"model":"m"}`
				if got := body[r.PromptSpan.Start:r.PromptSpan.End]; got != `[{"role":"user","content":"hi"}]` {
					t.Fatalf("prompt span %+v: %q", r.PromptSpan, got)
				}
			}},
		{name: "prompt span of a completion prompt", body: `{"model":"m","prompt":"once upon"}`,
			check: func(t *testing.T, r *Request) {
				if r.PromptSpan != (Span{22, 33}) {
					t.Fatalf("prompt span %+v", r.PromptSpan)
				}
			}},
		{name: "no prompt span", body: `{"model":"m","input":"x"}`,
			check: func(t *testing.T, r *Request) {
				if r.PromptSpan.Start != r.PromptSpan.End || r.InputSpan != (Span{21, 24}) {
					t.Fatalf("prompt span %+v, input span %+v", r.PromptSpan, r.InputSpan)
				}
			}},
		{name: "duplicate model", body: `{"model":"cheap","model":"premium"}`, code: ErrDuplicate, key: "model"},
		{name: "escaped duplicate", body: `{"model":"cheap","mo\u0064el":"premium"}`, code: ErrDuplicate, key: "model"},
		{name: "escaped model alone", body: `{"mo\u0064el":"premium"}`, check: func(t *testing.T, r *Request) {
			if r.Model != "premium" {
				t.Fatalf("model %q", r.Model)
			}
		}},
		// Go's encoding/json (an engine written in Go) matches keys without
		// case, Unicode folds included: "Model" and "MODEL" are "model" to it.
		{name: "model in another case", body: `{"model":"cheap","Model":"premium"}`, code: ErrDuplicate, key: "Model"},
		{name: "model in capitals first", body: `{"MODEL":"premium","model":"cheap"}`, code: ErrDuplicate, key: "model"},
		{name: "kelvin sign folds to k", body: `{"max_tokens":1,"max_to\u212aens":9}`, code: ErrDuplicate, key: "max_to\u212aens"},
		{name: "long s folds to s", body: `{"stream":false,"\u017ftream":true}`, code: ErrDuplicate, key: "\u017ftream"},
		{name: "case duplicate after many keys", body: manyKeys(100) + `,"K7":1}`, code: ErrDuplicate, key: "K7"},
		{name: "model in capitals alone", body: `{"MODEL":"premium"}`, check: func(t *testing.T, r *Request) {
			if r.Model != "premium" || r.ModelSpan != (Span{9, 18}) {
				t.Fatalf("model %q at %+v", r.Model, r.ModelSpan)
			}
		}},
		{name: "other keys in other cases", body: `{"model":"m","Stream":true,"MAX_TOKENS":7}`, check: func(t *testing.T, r *Request) {
			if !r.Stream || r.MaxTokens != 7 {
				t.Fatalf("stream %v, max tokens %d", r.Stream, r.MaxTokens)
			}
		}},
		{name: "long s is s", body: `{"model":"m","\u017ftream":true}`, check: func(t *testing.T, r *Request) {
			if !r.Stream {
				t.Fatal("stream not read")
			}
		}},
		{name: "dotted capital I is no i", body: `{"model":"m","\u0130nput":"x"}`, check: func(t *testing.T, r *Request) {
			if r.InputSpan.End != 0 {
				t.Fatalf("input span %+v: encoding/json does not fold İ onto i", r.InputSpan)
			}
		}},
		{name: "stream options in capitals", body: `{"model":"m","STREAM_OPTIONS":{"include_usage":true}}`, check: func(t *testing.T, r *Request) {
			if !r.IncludeUsage || r.StreamOptionsKind != Object {
				t.Fatalf("include usage %v, kind %d", r.IncludeUsage, r.StreamOptionsKind)
			}
		}},
		{name: "nested duplicate is fine", body: `{"model":"m","metadata":{"a":1,"a":2}}`},
		{name: "many keys then a duplicate", body: manyKeys(100) + `,"k7":1}`, code: ErrDuplicate, key: "k7"},
		{name: "deep", body: `{"a":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`, code: ErrDepth},
		{name: "deep enough", body: `{"a":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}`},
		{name: "array", body: `[1]`, code: ErrNotObject},
		{name: "bad utf-8", body: "{\"model\":\"\xff\"}", code: ErrSyntax},
		{name: "control char", body: "{\"model\":\"a\nb\"}", code: ErrSyntax},
		{name: "trailing", body: `{} x`, code: ErrSyntax},
		{name: "empty", body: ``, code: ErrSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			err := Parse([]byte(tc.body), 0, &r)
			var pe *Error
			switch {
			case tc.code == 0 && err != nil:
				t.Fatal(err)
			case tc.code != 0 && (!errors.As(err, &pe) || pe.Code != tc.code || pe.Key != tc.key):
				t.Fatalf("error %v, want code %d key %q", err, tc.code, tc.key)
			}
			if tc.check != nil {
				tc.check(t, &r)
			}
		})
	}
}

func manyKeys(n int) string {
	var b strings.Builder
	b.WriteString(`{"model":"m"`)
	for i := range n {
		b.WriteString(`,"k` + itoa(i) + `":1`)
	}
	return b.String()
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestAppendRewrite(t *testing.T) {
	for _, tc := range []struct{ in, model, want string }{
		{`{"model":"a","stream":true}`, "b", `{"stream_options":{"include_usage":true},"model":"b","stream":true}`},
		{`{"stream":true,"stream_options":{},"model":"a"}`, "", `{"stream":true,"stream_options":{"include_usage":true},"model":"a"}`},
		{`{"model":"a","stream_options":{"x":1}}`, "q\"x", `{"model":"q\"x","stream_options":{"include_usage":true,"x":1}}`},
		{`{"model":"a","stream_options":{"include_usage":false}}`, "", `{"model":"a","stream_options":{"include_usage":true}}`},
		{`{"model":"a","stream_options":null}`, "", `{"model":"a","stream_options":{"include_usage":true}}`},
	} {
		var r Request
		if err := Parse([]byte(tc.in), 0, &r); err != nil {
			t.Fatal(err)
		}
		if got := string(r.AppendRewrite(nil, []byte(tc.in), tc.model, true)); got != tc.want {
			t.Errorf("%s → %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestParseAllocs(t *testing.T) {
	body := []byte(`{"model":"chat","messages":[{"role":"user","content":"hello there"}],"stream":true,"temperature":0.7}`)
	var r Request
	n := testing.AllocsPerRun(100, func() { _ = Parse(body, 0, &r) })
	if n > 1 { // the model string
		t.Fatalf("%v allocs per Parse, want ≤ 1", n)
	}
}

// BenchmarkDeepNesting is the cost of refusing an 8 MiB body of '['.
func BenchmarkDeepNesting(b *testing.B) {
	body := []byte(`{"model":"m","x":` + strings.Repeat("[", 8<<20))
	var r Request
	b.ReportAllocs()
	for range b.N {
		if err := Parse(body, 0, &r); err == nil {
			b.Fatal("accepted")
		}
	}
}
