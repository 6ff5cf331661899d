package mockllm

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestCountWords(t *testing.T) {
	tests := []string{
		"", " ", "one", "  two words ", "tabs\tand\nnew\r\nlines", "a\vb\fc",
		"non\u00a0breaking", "ideographic\u3000space", "héllo wörld", "\xff\xfe bad utf8",
	}
	for _, s := range tests {
		if got, want := countWords(s), len(strings.Fields(s)); got != want {
			t.Errorf("countWords(%q) = %d, want %d", s, got, want)
		}
	}
}

func FuzzCountWords(f *testing.F) {
	f.Add("hello  world\n")
	f.Add("\u2028x\u00a0y")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := countWords(s), len(strings.Fields(s)); got != want {
			t.Errorf("countWords(%q) = %d, want %d", s, got, want)
		}
	})
}

func TestAppendJSONString(t *testing.T) {
	tests := []string{
		"", "plain", `quote " and \ backslash`, "ctl \x00\x01\x1f\t\r\n", "<html>&",
		"line\u2028sep\u2029", "ünïcödé 日本", "bad \xff utf8 \xc3",
	}
	for _, s := range tests {
		checkJSONString(t, s)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add(`a"b\c`)
	f.Add("\x00\u2028\xff")
	f.Fuzz(checkJSONString)
}

// checkJSONString checks that appendJSONString(s) is valid JSON that decodes
// to what encoding/json makes of s.
func checkJSONString(t *testing.T, s string) {
	b := appendJSONString([]byte("x"), s)[1:]
	var got string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("appendJSONString(%q) = %s: %v", s, b, err)
	}
	std, _ := json.Marshal(s)
	var want string
	_ = json.Unmarshal(std, &want)
	if got != want {
		t.Errorf("appendJSONString(%q) decodes to %q, want %q", s, got, want)
	}
}

func TestChunkText(t *testing.T) {
	for words := 1; words <= 12; words++ {
		st := newState(Config{ReplyWords: words}.normalized())
		for maxWords := 0; maxWords <= words; maxWords++ {
			reply, n, _ := st.replyText(maxWords)
			for k := 1; k <= 15; k++ {
				var sb strings.Builder
				for i := range k {
					sb.WriteString(st.chunkText(i, k, n))
				}
				if sb.String() != reply {
					t.Fatalf("words %d max %d chunks %d: joined %q, want %q", words, maxWords, k, sb.String(), reply)
				}
			}
		}
	}
}

func TestNormalized(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{"zero value", Config{}, Config{Name: "mock", ReplyWords: 8, StreamChunks: 8, FailStatus: 500}},
		{"kept", Config{Name: "n", ReplyWords: 3, StreamChunks: 2, FailStatus: 429, FailRate: 0.5, Latency: time.Second},
			Config{Name: "n", ReplyWords: 3, StreamChunks: 2, FailStatus: 429, FailRate: 0.5, Latency: time.Second}},
		{"clamped", Config{ReplyWords: -1, StreamChunks: -2, FailRate: 2, Latency: -1, Jitter: -1, ChunkGap: -1},
			Config{Name: "mock", ReplyWords: 8, StreamChunks: 8, FailStatus: 500, FailRate: 1}},
		{"negative rate", Config{FailRate: -0.5}, Config{Name: "mock", ReplyWords: 8, StreamChunks: 8, FailStatus: 500}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.normalized(); got != tt.want {
				t.Errorf("normalized() = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestModeString(t *testing.T) {
	tests := map[Mode]string{
		ModeNormal: "normal", ModeHang: "hang", ModeCloseConn: "close-conn",
		ModeCloseMidStream: "close-mid-stream", Mode(99): "unknown",
	}
	for m, want := range tests {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", int(m), got, want)
		}
	}
}

func TestReplyRenderingAllocs(t *testing.T) {
	st := newState(Config{}.normalized())
	req := genRequest{Model: "llama", PromptTokens: 12}
	g := newGeneration(st, true, 7, &req)
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		buf = g.appendReply(buf[:0])
		buf = g.appendStreamPrefix(buf[:0])
		buf = g.appendContentChoices(buf, st.chunkText(1, 8, g.words))
	})
	if allocs != 0 {
		t.Errorf("rendering allocates %v times, want 0", allocs)
	}
}
