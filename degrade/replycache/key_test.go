package replycache_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/modelgate/modelgate/degrade/replycache"
)

const chat = `{"model":"chat","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2+2?"}],"temperature":0,"max_tokens":64}`

func mustKeyScoped(scope, api, body string) [32]byte {
	k, _ := replycache.Key(scope, api, []byte(body))
	return k
}

func mustKey(t *testing.T, api, body string) [32]byte {
	t.Helper()
	k, ok := replycache.Key("", api, []byte(body))
	if !ok {
		t.Fatalf("Key(%s) not ok", body)
	}
	return k
}

func TestKeySame(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"key order and spacing", `{ "max_tokens" : 64, "temperature": 0,
			"messages": [ {"content":"Be brief.", "role":"system"}, {"role":"user","content":"What is 2+2?"} ],
			"model": "chat" }`},
		{"escapes", `{"model":"\u0063hat","messages":[{"role":"system","content":"Be brief\u002e"},{"role":"user","content":"What is 2\u002b2?"}],"temperature":0,"max_tokens":64}`},
		{"number spelling", `{"model":"chat","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2+2?"}],"temperature":0.0,"max_tokens":6.4e1}`},
		{"ignored fields", `{"model":"chat","store":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2+2?"}],"temperature":0,"max_tokens":64}`},
		{"stream false is absent", `{"stream":false,"model":"chat","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2+2?"}],"temperature":0,"max_tokens":64}`},
		{"last duplicate wins", `{"model":"other","model":"chat","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2+2?"}],"temperature":0,"max_tokens":64}`},
		{"stream decided by its last duplicate", `{"stream":true,"stream":false,"model":"chat","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2+2?"}],"temperature":0,"max_tokens":64}`},
		{"negative zero", `{"model":"chat","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2+2?"}],"temperature":-0,"max_tokens":64}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if mustKey(t, "chat", tc.body) != mustKey(t, "chat", chat) {
				t.Fatal("different key")
			}
		})
	}
}

func TestKeyDifferent(t *testing.T) {
	base := mustKey(t, "chat", chat)
	if mustKey(t, "completions", chat) == base {
		t.Fatal("the API is not in the key")
	}
	for _, scope := range []string{"team-a", "team-b", "\x00", "team-a\x00gpu=h100"} {
		k, _ := replycache.Key(scope, "chat", []byte(chat))
		if k == base {
			t.Fatalf("scope %q shares the unscoped key", scope)
		}
		if k2, _ := replycache.Key(scope, "chat", []byte(chat)); k2 != k {
			t.Fatalf("scope %q: two keys", scope)
		}
	}
	if a, _ := replycache.Key("ab", "c", []byte(chat)); a == mustKeyScoped("a", "bc", chat) {
		t.Fatal("scope and api run together")
	}
	for _, tc := range []struct{ name, from, to string }{
		{"model", `"model":"chat"`, `"model":"chat2"`},
		{"message", `2+2`, `2+3`},
		{"role", `"role":"system"`, `"role":"developer"`},
		{"message order", `{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2+2?"}`, `{"role":"user","content":"What is 2+2?"},{"role":"system","content":"Be brief."}`},
		{"temperature", `"temperature":0`, `"temperature":0.5`},
		{"max_tokens", `"max_tokens":64`, `"max_tokens":65`},
		{"stream", `"max_tokens":64`, `"max_tokens":64,"stream":true`},
		{"seed", `"max_tokens":64`, `"max_tokens":64,"seed":1`},
		{"unknown field", `"max_tokens":64`, `"max_tokens":64,"top_k":5`},
		{"nested user is kept", `"role":"user","content"`, `"role":"user","user":"bob","content"`},
		{"user", `"max_tokens":64`, `"max_tokens":64,"user":"bob"`},
		{"metadata", `"max_tokens":64`, `"max_tokens":64,"metadata":{"a":"1"}`},
		{"string and number", `"max_tokens":64`, `"max_tokens":"64"`},
		{"null and absent", `"max_tokens":64`, `"max_tokens":64,"stop":null`},
		{"big seeds keep digits", `"max_tokens":64`, `"max_tokens":64,"seed":9007199254740993`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Replace(chat, tc.from, tc.to, 1)
			if body == chat {
				t.Fatal("replacement did nothing")
			}
			if mustKey(t, "chat", body) == base {
				t.Fatalf("same key for %s", body)
			}
		})
	}
	a := mustKey(t, "chat", `{"seed":9007199254740993}`)
	if a == mustKey(t, "chat", `{"seed":9007199254740992}`) {
		t.Fatal("integers past 2^53 collide")
	}
}

func TestKeyRejects(t *testing.T) {
	for _, body := range []string{
		``, `[]`, `"x"`, `{`, `{"a":1`, `{"a":1}x`, `{"a":1}{}`, `{"a"}`, `{"a":}`, `{a:1}`,
		`{"a":[1,]}`, `{"a":tru}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":-}`, `{"a":1-2}`, `{"a":1.2.3}`,
		`{"a":"unterminated}`, strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat(`}`, 200),
	} {
		if _, ok := replycache.Key("", "chat", []byte(body)); ok {
			t.Errorf("Key(%.40q) ok", body)
		}
	}
	if _, ok := replycache.Key("", "chat", []byte(" {} \n")); !ok {
		t.Error("empty object with spaces rejected")
	}
}

// FuzzKey checks that re-encoding a JSON object — sorted keys, reversed
// keys, other spacing, other escapes — never changes its key, and that Key
// never panics.
func FuzzKey(f *testing.F) {
	for _, seed := range []string{
		chat,
		`{"model":"e","input":["a","b"],"encoding_format":"float","dimensions":256}`,
		`{"model":"c","prompt":"Say \"hi\" \u00e9\ud83d\ude00","temperature":0.7,"top_p":1,"n":2,"stop":["\n"]}`,
		`{"model":"c","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"b":{},"a":{}}}}}],"tool_choice":"auto"}`,
		`{"model":"c","logit_bias":{"50256":-100},"response_format":{"type":"json_object"},"seed":-12,"presence_penalty":-0.5e-3}`,
		`{"a":{"a":{"a":[[],{},null,true,false,1e308,-1E-7]}},"a":0}`,
		`{"<&>":"\u2028","":""}`,
		`{"stream":true,"user":"a","stream":false}`,
	} {
		f.Add([]byte(seed), uint64(1))
	}
	f.Fuzz(func(t *testing.T, body []byte, seed uint64) {
		key, ok := replycache.Key("", "chat", body)
		var probe, v any // probe: the whole body is one value; v: with exact numbers
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if !utf8.Valid(body) || json.Unmarshal(body, &probe) != nil || dec.Decode(&v) != nil {
			return
		}
		if _, isObject := v.(map[string]any); !isObject || !ok {
			return
		}
		rng := rand.New(rand.NewPCG(seed, 0))
		sorted, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var shuffled bytes.Buffer
		writeShuffled(&shuffled, v, rng)
		for _, again := range [][]byte{sorted, shuffled.Bytes()} {
			k2, ok2 := replycache.Key("", "chat", again)
			if !ok2 || k2 != key {
				t.Fatalf("key changed (ok %v)\n from %s\n   to %s", ok2, body, again)
			}
		}
	})
}

// writeShuffled encodes v as JSON with object keys in a random order,
// random whitespace, and every non-ASCII character escaped.
func writeShuffled(b *bytes.Buffer, v any, rng *rand.Rand) {
	space := func() {
		b.WriteString([]string{"", " ", "\n\t", "  \r\n"}[rng.IntN(4)])
	}
	space()
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeShuffled(b, k, rng)
			b.WriteByte(':')
			writeShuffled(b, v[k], rng)
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			writeShuffled(b, x, rng)
		}
		b.WriteByte(']')
	case string:
		b.WriteByte('"')
		for _, r := range v {
			switch {
			case r == '"' || r == '\\':
				b.WriteByte('\\')
				b.WriteRune(r)
			case r < 0x20 || r > 0x7e:
				if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
					fmt.Fprintf(b, `\u%04x\u%04X`, r1, r2)
				} else {
					fmt.Fprintf(b, `\u%04x`, r)
				}
			default:
				b.WriteRune(r)
			}
		}
		b.WriteByte('"')
	case json.Number:
		b.WriteString(v.String())
	case bool:
		fmt.Fprint(b, v)
	case nil:
		b.WriteString("null")
	default:
		panic(fmt.Sprintf("unexpected %T", v))
	}
	space()
}
