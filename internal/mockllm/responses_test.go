package mockllm

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// responseObject is the Responses API response as the SDKs read it.
type responseObject struct {
	ID     string `json:"id"`
	Object string `json:"object"`
	Status string `json:"status"`
	Model  string `json:"model"`
	Output []struct {
		Type    string `json:"type"`
		Role    string `json:"role"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	} `json:"output"`
	Usage *struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

func TestResponses(t *testing.T) {
	s := startServer(t, Config{Name: "m", ReplyWords: 6, StreamChunks: 3})
	c := newClient(t, testTimeout)
	body := `{"model":"qwen","instructions":"be brief","input":[{"role":"user","content":"one two three"},{"role":"user","content":[{"type":"input_text","text":"four"}]}]}`
	resp, b := post(t, c, s, "/v1/responses", body)
	r := decode[responseObject](t, b)
	if resp.StatusCode != 200 || r.Object != "response" || r.Status != "completed" || r.Model != "qwen" ||
		len(r.Output) != 1 || r.Output[0].Role != "assistant" || len(r.Output[0].Content) != 1 || r.Output[0].Content[0].Type != "output_text" {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	// 2 words of instructions, 3+1 and 1+1 for the two items; 6 words out.
	if u := r.Usage; u == nil || u.InputTokens != 8 || u.OutputTokens != 6 || u.TotalTokens != 14 ||
		len(strings.Fields(r.Output[0].Content[0].Text)) != 6 {
		t.Fatalf("usage %+v of %s", u, b)
	}

	resp, b = post(t, c, s, "/v1/responses", `{"model":"qwen","input":"hello there","stream":true}`)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	events, err := readEvents(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	var text string
	var done responseObject
	for i, ev := range events {
		var e struct {
			Type     string          `json:"type"`
			Seq      int             `json:"sequence_number"`
			Delta    string          `json:"delta"`
			Response json.RawMessage `json:"response"`
		}
		if err := json.Unmarshal([]byte(ev.data), &e); err != nil || e.Seq != i {
			t.Fatalf("event %d: %v %s", i, err, ev.data)
		}
		types = append(types, e.Type)
		if e.Type == "response.output_text.delta" {
			text += e.Delta
		}
		if e.Type == "response.completed" {
			_ = json.Unmarshal(e.Response, &done)
		}
	}
	want := "response.created response.in_progress response.output_item.added response.content_part.added " +
		"response.output_text.delta response.output_text.delta response.output_text.delta response.output_text.done " +
		"response.content_part.done response.output_item.done response.completed"
	if got := strings.Join(types, " "); got != want {
		t.Fatalf("events:\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(string(b), "event: response.output_text.delta\ndata: ") || strings.Contains(string(b), "[DONE]") {
		t.Errorf("stream framing:\n%s", b)
	}
	if done.Usage == nil || done.Usage.InputTokens != 2 || done.Usage.OutputTokens != 6 || done.Output[0].Content[0].Text != text {
		t.Errorf("completed: %+v, deltas %q", done, text)
	}
	if s.Requests() != 2 {
		t.Errorf("requests %d", s.Requests())
	}
	if resp, _ := post(t, c, s, "/v1/responses", `{"model":"qwen","input":5}`); resp.StatusCode != 400 {
		t.Errorf("bad input: %d", resp.StatusCode)
	}
	resp, err = do(c, s, http.MethodGet, "/v1/responses", "")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET: %d", resp.StatusCode)
	}
}
