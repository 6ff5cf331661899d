package router

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/testkit"
)

// TestAccessLogFields: each line says who asked what (method, path, client
// address, user agent), how much went each way and which service answered;
// a client's mistake is logged at debug, a success at info.
func TestAccessLogFields(t *testing.T) {
	var logw testkit.Buffer
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen"}}}, WithAccessLog(zerolog.New(&logw)))
	g.mocks("qwen", 1, mockllm.Config{StreamChunks: 4}, nil)
	body := `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`
	plain := g.do("POST", "/v1/chat/completions", body, "User-Agent", "fieldtest/1.0")
	stream := g.do("POST", "/v1/chat/completions", `{"model":"chat","stream":true,"messages":[]}`, "User-Agent", "fieldtest/1.0")
	g.do("POST", "/v1/chat/completions", `{"model":"nope","messages":[]}`, "User-Agent", "fieldtest/1.0")
	lines := logw.WaitLines(t, 10*time.Second, 3)
	type line struct {
		Level, Method, Path, Service string
		ClientIP                     string `json:"client_ip"`
		UserAgent                    string `json:"user_agent"`
		BytesIn                      int    `json:"bytes_in"`
		BytesOut                     int    `json:"bytes_out"`
		Status                       int
		ResponseType                 string `json:"response_type"`
	}
	got := map[string]line{}
	for _, s := range lines {
		var l line
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatal(err)
		}
		key := l.ResponseType
		if l.Status != 200 {
			key = "error"
		}
		got[key] = l
		if l.Method != "POST" || l.Path != "/v1/chat/completions" || l.ClientIP != "127.0.0.1" || l.UserAgent != "fieldtest/1.0" || l.BytesIn == 0 {
			t.Errorf("request fields: %s", s)
		}
	}
	if l := got["normal"]; l.Level != "info" || l.BytesIn != len(body) || l.BytesOut != len(plain.Body()) || !strings.HasSuffix(l.Service, "@@qwen") {
		t.Errorf("normal reply (%d bytes): %+v", len(plain.Body()), l)
	}
	if l := got["stream"]; l.BytesOut != len(stream.Body()) || l.BytesOut == 0 {
		t.Errorf("stream (%d bytes): %+v", len(stream.Body()), l)
	}
	if l := got["error"]; l.Level != "debug" || l.Status != 404 || l.BytesOut == 0 || l.Service != "" {
		t.Errorf("404: %+v", l)
	}
}
