package router

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/testkit"
)

// event is one SSE event as a client received it.
type event struct {
	data string
	at   time.Time
}

// streamChat posts a streaming chat request with net/http and reads the
// events as they arrive.
func streamChat(t *testing.T, addr, body string) []event {
	t.Helper()
	return streamPost(t, addr, "/v1/chat/completions", body)
}

// streamPost posts a streaming request to path and reads the events'
// data as they arrive.
func streamPost(t *testing.T, addr, path, body string) []event {
	t.Helper()
	resp, err := http.Post("http://"+addr+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var out []event
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, event{d, time.Now()})
		}
	}
	return out
}

func hasContent(data string) bool {
	var c struct {
		Choices []struct {
			Delta struct{ Content string } `json:"delta"`
		} `json:"choices"`
	}
	return json.Unmarshal([]byte(data), &c) == nil && len(c.Choices) > 0 && c.Choices[0].Delta.Content != ""
}

func TestStreamArrivesSpread(t *testing.T) {
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen"}}})
	g.mocks("qwen", 1, mockllm.Config{StreamChunks: 64, ReplyWords: 64, ChunkGap: 20 * time.Millisecond}, nil)
	begin := time.Now()
	events := streamChat(t, g.addr, `{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	var content []event
	for _, e := range events {
		if hasContent(e.data) {
			content = append(content, e)
		}
	}
	if len(content) != 64 {
		t.Fatalf("%d content chunks, want 64 (in = out)", len(content))
	}
	if events[len(events)-1].data != "[DONE]" {
		t.Fatalf("last event %q", events[len(events)-1].data)
	}
	spread := content[63].at.Sub(content[0].at)
	total := events[len(events)-1].at.Sub(begin)
	if spread < 63*20*time.Millisecond*8/10 || content[0].at.Sub(begin) > total/4 {
		t.Fatalf("chunks bunched: first after %v, spread %v, total %v", content[0].at.Sub(begin), spread, total)
	}
	if g.metric(`modelgate_ttft_seconds_count{model="chat"}`) != 1 {
		t.Error("TTFT histogram not filled")
	}
}

func TestStreamUsage(t *testing.T) {
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen"}}})
	m := g.mocks("qwen", 1, mockllm.Config{StreamChunks: 4}, nil)
	// Not asked: usage is requested upstream for accounting, not shown.
	events := streamChat(t, g.addr, `{"model":"chat","stream":true,"messages":[{"role":"user","content":"one two three"}]}`)
	for _, e := range events {
		if strings.Contains(e.data, `"usage"`) {
			t.Fatalf("usage chunk reached a client that did not ask: %s", e.data)
		}
	}
	if !bytes.Contains(m[0].LastRequest(), []byte(`"include_usage":true`)) {
		t.Fatalf("include_usage not set upstream: %s", m[0].LastRequest())
	}
	in := g.metric(`modelgate_tokens_total{model="chat",type="input",source="usage"}`)
	out := g.metric(`modelgate_tokens_total{model="chat",type="output",source="usage"}`)
	if in != 4 || out != 8 { // 3 words + 1 per message; 8 reply words
		t.Fatalf("tokens in %v out %v, want the instance's 4 and 8", in, out)
	}
	// Asked: the usage chunk passes.
	events = streamChat(t, g.addr, `{"model":"chat","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}`)
	if !strings.Contains(events[len(events)-2].data, `"total_tokens"`) {
		t.Fatalf("usage chunk missing for a client that asked: %v", events[len(events)-2].data)
	}
}

func TestEstimatedTokens(t *testing.T) {
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen"}}})
	g.mocks("qwen", 1, mockllm.Config{NoUsage: true}, nil)
	resp := g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[{"role":"user","content":"a fairly long prompt of some words"}]}`)
	if resp.StatusCode() != 200 {
		t.Fatal(resp.StatusCode())
	}
	streamChat(t, g.addr, `{"model":"chat","stream":true,"messages":[{"role":"user","content":"hello"}]}`)
	if v := g.metric(`modelgate_tokens_total{model="chat",type="output",source="estimated"}`); v <= 0 {
		t.Fatalf("estimated output tokens %v", v)
	}
	if v := g.metric(`modelgate_tokens_total{model="chat",type="input",source="estimated"}`); v <= 0 {
		t.Fatalf("estimated input tokens %v", v)
	}
	if v := g.metric(`modelgate_tokens_total{model="chat",type="output",source="usage"}`); v != 0 {
		t.Fatalf("usage tokens %v without usage", v)
	}
}

func TestRetryOnUpstreamError(t *testing.T) {
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen", Retries: 1}}})
	m := g.mocks("qwen", 2, mockllm.Config{}, nil)
	m[0].Set(func(c *mockllm.Config) { c.FailRate, c.FailStatus = 1, 503 })
	for range 20 {
		resp := g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[]}`)
		if resp.StatusCode() != 200 || string(resp.Header.Peek("X-Mock-Instance")) != "qwen-1" {
			t.Fatalf("status %d from %s", resp.StatusCode(), resp.Header.Peek("X-Mock-Instance"))
		}
	}
	if m[0].Requests() == 0 {
		t.Fatal("the failing instance was never tried: retries not exercised")
	}
}

func TestMidStreamFailureIsNotRetried(t *testing.T) {
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen", Retries: 2}}})
	m := g.mocks("qwen", 1, mockllm.Config{StreamChunks: 8}, nil)
	m[0].SetMode(mockllm.ModeCloseMidStream)
	events := streamChat(t, g.addr, `{"model":"chat","stream":true,"messages":[]}`)
	last := events[len(events)-1].data
	if !strings.Contains(last, `"error"`) || !strings.Contains(last, "stream interrupted") {
		t.Fatalf("stream did not end with an error event: %q", last)
	}
	if n := m[0].Requests(); n != 1 {
		t.Fatalf("instance got %d requests: a started stream was retried", n)
	}
}

func TestModelRewriteAndHeaders(t *testing.T) {
	t.Setenv("MG_TEST_SECRET", "s3cret")
	g := newGateway(t, Config{
		Routes:      []Route{{Model: "chat", Aliases: []string{"gpt-4o-mini"}, Service: "qwen", UpstreamModel: "Qwen2.5-7B"}},
		Credentials: map[string]Credential{"vendor": {Env: "MG_TEST_SECRET"}},
	})
	m := g.mocks("qwen", 1, mockllm.Config{}, map[string]string{"cred_ref": "vendor"})
	resp := g.do("POST", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`,
		"Authorization", "Bearer client-key", "X-Request-Id", "req-42")
	if resp.StatusCode() != 200 {
		t.Fatal(resp.StatusCode())
	}
	if !bytes.Contains(m[0].LastRequest(), []byte(`"model":"Qwen2.5-7B"`)) {
		t.Errorf("model not rewritten: %s", m[0].LastRequest())
	}
	// The instance's credential reaching it is TestUpstreamCredential's;
	// here the mock's echo of it must not reach the client.
	if got := resp.Header.Peek("X-Mock-Authorization"); got != nil {
		t.Errorf("the client got the upstream credential: %q", got)
	}
	if got := string(resp.Header.Peek("X-Request-Id")); got != "req-42" {
		t.Errorf("X-Request-Id %q", got)
	}
	if got := string(resp.Header.Peek("X-Mock-Request-Id")); got != "req-42" {
		t.Errorf("upstream X-Request-Id %q", got)
	}
}

func TestPassthrough(t *testing.T) {
	g := newGateway(t, Config{Routes: []Route{{Model: "whisper", Service: "asr"}}, Passthrough: []string{"/v1/audio/"}})
	g.mocks("asr", 1, mockllm.Config{}, nil)
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	_ = w.WriteField("model", "whisper")
	f, _ := w.CreateFormFile("file", "a.wav")
	audio := bytes.Repeat([]byte{0, 1, 2, 255}, 4096)
	_, _ = f.Write(audio)
	_ = w.Close()
	resp := g.do("POST", "/v1/audio/transcriptions", body.String(), "Content-Type", w.FormDataContentType())
	if resp.StatusCode() != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
	}
	var echo struct {
		Path       string `json:"path"`
		BodySHA256 string `json:"body_sha256"`
	}
	_ = json.Unmarshal(resp.Body(), &echo)
	sum := sha256.Sum256(body.Bytes())
	if echo.Path != "/v1/audio/transcriptions" || echo.BodySHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("bytes changed on the way: %+v", echo)
	}
	if r := g.do("POST", "/v1/images/generations", `{"model":"whisper"}`); r.StatusCode() != 404 {
		t.Fatalf("a path outside the list got %d", r.StatusCode())
	}
}

func TestClientDisconnectStopsStream(t *testing.T) {
	var logw testkit.Buffer
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen"}}}, WithAccessLog(zerolog.New(&logw)))
	g.mocks("qwen", 1, mockllm.Config{StreamChunks: 1000, ReplyWords: 1000, ChunkGap: 10 * time.Millisecond}, nil)
	resp, err := http.Post("http://"+g.addr+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"chat","stream":true,"messages":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = bufio.NewReader(resp.Body).ReadString('\n')
	began := time.Now()
	resp.Body.Close()
	line := logw.WaitLines(t, 5*time.Second, 1)[0] // the stream ended after the client left
	if !strings.Contains(line, "client closed the stream") {
		t.Fatalf("access log: %s", line)
	}
	t.Logf("upstream stream stopped %v after the client closed", time.Since(began))
}
