package reqjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks Parse against encoding/json: the same verdict on
// validity (plus RFC 8259's UTF-8), the same duplicate top-level key, and
// the same value for every extracted field; and that AppendRewrite sets the
// model and include_usage while every other field stays as it was.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"model":"chat","messages":[{"role":"user","content":"hi"}],"stream":true}`,
		`{"model":"m","model":"n"}`,
		`{"mo\u0064el":"a","model":"b"}`,
		`{"model":"m","stream_options":{"include_usage":false,"include_usage":true}}`,
		`{"model":"m","stream_options":null,"stream":true,"max_tokens":12,"temperature":0,"n":2,"user":"u\u00e9"}`,
		`{"model":"m","messages":[{"content":[{"type":"text","text":"abc"}]}],"max_completion_tokens":9}`,
		`{"model":"m","prompt":["a","b\ud83d\ude00",[1,2]],"input":"x"}`,
		`{"model":"m","input":[{"role":"user","content":"hi"}],"max_output_tokens":7,"stream":true}`,
		`[[[[1]]]]`, `"x"`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `{"a":1e400}`, `{"a":-0.0e+1}`,
		`{"model":{}}`, ` { } `, `{"model":"m",}`, `{"model":01}`,
	} {
		f.Add([]byte(s), "up-model", true)
	}
	f.Fuzz(func(t *testing.T, body []byte, model string, usage bool) {
		var r Request
		err := Parse(body, 10000, &r) // encoding/json's own bound
		check(t, body, &r, err)
		if err != nil {
			return
		}
		if !utf8.ValidString(model) {
			model = "x"
		}
		out := r.AppendRewrite(nil, body, model, usage)
		var r2 Request
		if err := Parse(out, 10000, &r2); err != nil {
			t.Fatalf("rewrite of %q gave %q: %v", body, out, err)
		}
		if r.ModelKind != Absent && model != "" && (r2.ModelKind != String || r2.Model != model) {
			t.Fatalf("rewrite: model %q, want %q in %q", r2.Model, model, out)
		}
		if usage && !r2.IncludeUsage {
			t.Fatalf("rewrite: include_usage not set in %q", out)
		}
		a, b := topLevel(t, body), topLevel(t, out)
		for k, v := range a {
			if k == "model" && model != "" || k == "stream_options" && usage {
				continue
			}
			if !bytes.Equal(b[k], v) {
				t.Fatalf("rewrite changed %q: %s → %s", k, v, b[k])
			}
		}
	})
}

// check compares Parse's result with encoding/json's reading of body.
func check(t *testing.T, body []byte, r *Request, err error) {
	t.Helper()
	var pe *Error
	if err != nil && !errors.As(err, &pe) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if !json.Valid(body) || !utf8.Valid(body) {
		if err == nil || pe.Code != ErrSyntax && pe.Code != ErrDepth {
			t.Fatalf("%q is not valid JSON, Parse said %v", body, err)
		}
		return
	}
	if err != nil && pe.Code == ErrSyntax {
		t.Fatalf("%q is valid JSON, Parse said %v", body, err)
	}
	if bytes.TrimLeft(body, " \t\r\n")[0] != '{' {
		if err == nil || pe.Code != ErrNotObject {
			t.Fatalf("%q is not an object, Parse said %v", body, err)
		}
		return
	}
	if dup, ok := firstDuplicate(t, body); ok {
		if err == nil || pe.Code != ErrDuplicate || pe.Key != dup {
			t.Fatalf("%q duplicates %q, Parse said %v", body, dup, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%q: %v", body, err)
	}
	top := topLevel(t, body)
	wantString := func(name string, kind Kind, got string) {
		raw, ok := top[name]
		if !ok {
			if kind != Absent {
				t.Fatalf("%s: kind %d, want absent", name, kind)
			}
			return
		}
		if kind != kindAt(raw[0]) {
			t.Fatalf("%s: kind %d, want that of %s", name, kind, raw)
		}
		var s string
		if json.Unmarshal(raw, &s) == nil && s != got {
			t.Fatalf("%s = %q, want %q", name, got, s)
		}
	}
	wantString("model", r.ModelKind, r.Model)
	wantString("user", r.UserKind, r.User)
	if got, want := r.Stream, string(top["stream"]) == "true"; got != want {
		t.Fatalf("stream = %v, want %v", got, want)
	}
	wantInt := func(name string) int64 {
		var n int64
		if json.Unmarshal(top[name], &n) != nil {
			return 0
		}
		return n
	}
	var mt int64
	if n := wantInt("max_tokens"); n > 0 {
		mt = n
	} else if n := wantInt("max_completion_tokens"); n > 0 {
		mt = n
	} else if n := wantInt("max_output_tokens"); n > 0 {
		mt = n
	}
	if r.MaxTokens != mt {
		t.Fatalf("max_tokens = %d, want %d", r.MaxTokens, mt)
	}
	if _, ok := top["n"]; ok && kindAt(top["n"][0]) == Number && r.N != wantInt("n") {
		t.Fatalf("n = %d, want %d", r.N, wantInt("n"))
	}
	var temp float64
	if raw, ok := top["temperature"]; ok && json.Unmarshal(raw, &temp) == nil && r.Temperature != temp {
		t.Fatalf("temperature = %v, want %v", r.Temperature, temp)
	}
	if got, want := r.IncludeUsage, includeUsage(t, top["stream_options"]); got != want {
		t.Fatalf("include_usage = %v, want %v", got, want)
	}
	if got, want := r.PromptBytes, promptBytes(t, body); got != want {
		t.Fatalf("prompt bytes = %d, want %d", got, want)
	}
}

// topLevel returns the raw values of a valid object without duplicates.
func topLevel(t *testing.T, body []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]json.RawMessage{}
	for k, v := range m { // compare values without insignificant space
		var b bytes.Buffer
		_ = json.Compact(&b, v)
		for _, name := range readKeys { // under the name encoding/json would match it to
			if bytes.EqualFold([]byte(k), []byte(name)) {
				k = name
			}
		}
		out[k] = b.Bytes()
	}
	return out
}

// readKeys are the top-level keys Parse reads.
var readKeys = []string{"model", "stream", "stream_options", "max_tokens", "max_completion_tokens",
	"max_output_tokens", "temperature", "n", "messages", "prompt", "input", "user"}

// firstDuplicate finds the first top-level key that repeats an earlier one.
func firstDuplicate(t *testing.T, body []byte) (string, bool) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	_, _ = dec.Token() // {
	seen := map[string]bool{}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		for prev := range seen { // keys match without case, as encoding/json matches fields
			if bytes.EqualFold([]byte(prev), []byte(k.(string))) {
				return k.(string), true
			}
		}
		seen[k.(string)] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return "", false
}

// includeUsage reads stream_options.include_usage, the last of duplicates.
func includeUsage(t *testing.T, raw json.RawMessage) bool {
	if len(raw) == 0 || raw[0] != '{' {
		return false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return string(m["include_usage"]) == "true"
}

// promptBytes walks the token stream: every string under prompt and input,
// and the strings of content and text members under messages (duplicates
// included).
func promptBytes(t *testing.T, body []byte) int {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	_, _ = dec.Token()
	n := 0
	for dec.More() {
		k, _ := dec.Token()
		key := k.(string)
		for _, name := range readKeys { // as encoding/json would match it
			if strings.EqualFold(key, name) {
				key = name
			}
		}
		switch key {
		case "prompt", "input":
			n += walk(t, dec, inPrompt)
		case "messages":
			n += walk(t, dec, inMessages)
		default:
			walk(t, dec, inOther)
		}
	}
	return n
}

// walk reads one value from dec and counts its prompt text.
func walk(t *testing.T, dec *json.Decoder, ctx context) int {
	tok, err := dec.Token()
	if err != nil && err != io.EOF {
		t.Fatal(err)
	}
	switch v := tok.(type) {
	case string:
		if ctx == inPrompt || ctx == inStringPrompt {
			return len(v)
		}
	case json.Delim:
		if ctx == inStringPrompt {
			ctx = inMessages
		}
		n := 0
		switch v {
		case '[':
			for dec.More() {
				n += walk(t, dec, ctx)
			}
		case '{':
			for dec.More() {
				k, _ := dec.Token()
				sub := ctx
				if ctx == inMessages && (k == "content" || k == "text") {
					sub = inStringPrompt
				}
				n += walk(t, dec, sub)
			}
		}
		_, _ = dec.Token() // the closing delimiter
		return n
	}
	return 0
}

// inStringPrompt counts the value only if it is a string.
const inStringPrompt context = 100
