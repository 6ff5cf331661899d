package enginetest

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

type usage struct {
	Prompt     int `json:"prompt_tokens"`
	Completion int `json:"completion_tokens"`
}

// TestLlama starts a chat and an embedding llama-server with the tiny model
// and checks every API the integration tests use.
func TestLlama(t *testing.T) {
	srvs := Llamas(t, 1, LlamaOptions{})
	chat := srvs[0]
	emb := Llama(t, LlamaOptions{Embeddings: true})

	if code, body := get(t, chat.URL+"/health"); code != 200 {
		t.Fatalf("/health: %d %s", code, body)
	}
	if _, body := get(t, chat.URL+"/v1/models"); !strings.Contains(body, `"tiny"`) {
		t.Fatalf("/v1/models does not list the alias: %s", body)
	}

	code, body := post(t, chat.URL+"/v1/chat/completions",
		`{"model":"tiny","max_tokens":8,"messages":[{"role":"user","content":"hello world"}]}`)
	var cr struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
		Usage usage `json:"usage"`
	}
	if err := json.Unmarshal(body, &cr); code != 200 || err != nil || len(cr.Choices) != 1 {
		t.Fatalf("chat: %d %v %s", code, err, body)
	}
	if cr.Usage.Prompt < 3 || cr.Usage.Completion < 1 || cr.Usage.Completion > 8 {
		t.Fatalf("chat usage %+v", cr.Usage)
	}

	code, body = post(t, chat.URL+"/v1/completions", `{"model":"tiny","max_tokens":4,"prompt":"the cache"}`)
	if code != 200 || !strings.Contains(string(body), `"text_completion"`) {
		t.Fatalf("completions: %d %s", code, body)
	}

	// A stream ends with a usage chunk and [DONE].
	client := &http.Client{Timeout: 60 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Post(chat.URL+"/v1/chat/completions", "application/json", strings.NewReader(
		`{"model":"tiny","max_tokens":6,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			events = append(events, d)
		}
	}
	resp.Body.Close()
	if len(events) < 3 || events[len(events)-1] != "[DONE]" || !strings.Contains(events[len(events)-2], `"usage"`) {
		t.Fatalf("stream events: %q", events)
	}

	code, body = post(t, emb.URL+"/v1/embeddings", `{"model":"tiny-embed","input":["hello","world"]}`)
	var er struct {
		Data []struct {
			Embedding []float64 `json:"embedding"`
		} `json:"data"`
		Usage usage `json:"usage"`
	}
	if err := json.Unmarshal(body, &er); code != 200 || err != nil || len(er.Data) != 2 || len(er.Data[0].Embedding) != 256 {
		t.Fatalf("embeddings: %d %v %.300s", code, err, body)
	}
	if er.Usage.Prompt < 2 {
		t.Fatalf("embeddings usage %+v", er.Usage)
	}

	if _, m := get(t, chat.URL+"/metrics"); !strings.Contains(m, "llamacpp:prompt_tokens_total") {
		t.Fatalf("/metrics: %.300s", m)
	}

	// Stop kills the process group: the port no longer answers.
	chat.Stop()
	if !chat.Exited() {
		t.Fatal("still running after Stop")
	}
	if c, err := net.DialTimeout("tcp", chat.Addr, time.Second); err == nil {
		c.Close()
		t.Fatal("port still open after Stop")
	}
}
