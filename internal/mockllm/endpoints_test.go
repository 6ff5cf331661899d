package mockllm

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
)

// embeddingReply is the OpenAI embeddings reply; Embedding is a float array
// or, for encoding_format "base64", a string.
type embeddingReply struct {
	Object string `json:"object"`
	Model  string `json:"model"`
	Data   []struct {
		Object    string `json:"object"`
		Index     int    `json:"index"`
		Embedding any    `json:"embedding"`
	} `json:"data"`
	Usage *struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

// vector returns embedding i of r as float32s, decoding base64 if needed.
func (r embeddingReply) vector(t *testing.T, i int) []float32 {
	t.Helper()
	switch e := r.Data[i].Embedding.(type) {
	case []any:
		v := make([]float32, len(e))
		for j, f := range e {
			v[j] = float32(f.(float64))
		}
		return v
	case string:
		raw, err := base64.StdEncoding.DecodeString(e)
		if err != nil {
			t.Fatalf("base64: %v", err)
		}
		v := make([]float32, len(raw)/4)
		for j := range v {
			v[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
		}
		return v
	default:
		t.Fatalf("embedding %d has type %T", i, e)
		return nil
	}
}

func TestEmbeddings(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		body       string
		inputs     []string // the hashed identity of each input
		wantTokens int      // -1: no usage
	}{
		{"one string", Config{}, `{"model":"e5","input":"hello big world"}`, []string{"hello big world"}, 3},
		{"array of strings", Config{}, `{"model":"e5","input":["a b","c","a b"]}`, []string{"a b", "c", "a b"}, 5},
		{"base64", Config{}, `{"model":"e5","input":["x y"],"encoding_format":"base64"}`, []string{"x y"}, 2},
		{"token ids", Config{}, `{"model":"e5","input":[1, 2, 3]}`, []string{"[1,2,3]"}, 3},
		{"arrays of token ids", Config{}, `{"model":"e5","input":[[1,2],[3]]}`, []string{"[1,2]", "[3]"}, 3},
		{"NoUsage", Config{NoUsage: true}, `{"model":"e5","input":"x"}`, []string{"x"}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tt.cfg)
			c := newClient(t, testTimeout)
			resp, b := post(t, c, s, "/v1/embeddings", tt.body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			r := decode[embeddingReply](t, b)
			if r.Object != "list" || r.Model != "e5" || len(r.Data) != len(tt.inputs) {
				t.Fatalf("object/model/len = %q/%q/%d", r.Object, r.Model, len(r.Data))
			}
			for i, in := range tt.inputs {
				d := r.Data[i]
				if d.Object != "embedding" || d.Index != i {
					t.Errorf("data[%d] object/index = %q/%d", i, d.Object, d.Index)
				}
				got := r.vector(t, i)
				want := Embedding([]byte(in))
				if len(got) != EmbeddingDim || [EmbeddingDim]float32(got) != want {
					t.Errorf("data[%d] = %v, want %v", i, got, want)
				}
			}
			switch {
			case tt.wantTokens < 0 && r.Usage != nil:
				t.Errorf("usage = %+v, want none", *r.Usage)
			case tt.wantTokens >= 0 && (r.Usage == nil || r.Usage.PromptTokens != tt.wantTokens || r.Usage.TotalTokens != tt.wantTokens):
				t.Errorf("usage = %+v, want %d tokens", r.Usage, tt.wantTokens)
			}
			if s.Requests() != 1 {
				t.Errorf("Requests = %d", s.Requests())
			}
		})
	}
}

func TestEmbedding(t *testing.T) {
	a, b := Embedding([]byte("a")), Embedding([]byte("b"))
	if a == b {
		t.Error("different inputs, equal vectors")
	}
	if a != Embedding([]byte("a")) {
		t.Error("same input, different vectors")
	}
	var norm float64
	for _, f := range a {
		norm += float64(f) * float64(f)
	}
	if math.Abs(norm-1) > 1e-5 {
		t.Errorf("|v|² = %v, want 1", norm)
	}
}

func TestModelsAndHealth(t *testing.T) {
	tests := []struct {
		name, path string
		cfg        Config
		want       string
	}{
		{"models named", "/v1/models", Config{Name: "qwen-a"}, `{"object":"list","data":[{"id":"qwen-a","object":"model","created":0,"owned_by":"mockllm"}]}`},
		{"models default", "/v1/models", Config{}, `{"object":"list","data":[{"id":"mock","object":"model","created":0,"owned_by":"mockllm"}]}`},
		{"health", "/health", Config{}, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tt.cfg)
			c := newClient(t, testTimeout)
			resp, err := do(c, s, http.MethodGet, tt.path, "")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != tt.want {
				t.Errorf("%d %s, want 200 %s", resp.StatusCode, b, tt.want)
			}
			if s.Requests() != 0 || s.LastRequest() != nil {
				t.Errorf("Requests %d LastRequest %q: want 0 and nil", s.Requests(), s.LastRequest())
			}
		})
	}
}

func TestEcho(t *testing.T) {
	binary := bytes.Repeat([]byte{0, 1, 2, 0xff, '\r', '\n'}, 50000)
	tests := []struct {
		name, method, path, query, contentType string
		body                                   []byte
	}{
		{"audio upload", http.MethodPost, "/v1/audio/transcriptions", "", "multipart/form-data; boundary=xyz",
			[]byte("--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF....\r\n--xyz--\r\n")},
		{"binary body", http.MethodPut, "/v1/files/file-1/content", "purpose=fine-tune", "application/octet-stream", binary},
		{"delete without body", http.MethodDelete, "/v1/files/file-1", "", "", nil},
		{"json with quotes", http.MethodPost, "/v1/images/generations", "", `application/json; x="y"`, []byte(`{"prompt":"a cat"}`)},
	}
	s := startServer(t, Config{})
	c := newClient(t, testTimeout)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := "http://" + s.Addr() + tt.path
			if tt.query != "" {
				url += "?" + tt.query
			}
			req, err := http.NewRequest(tt.method, url, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			type echo struct {
				Path        string `json:"path"`
				Query       string `json:"query"`
				Method      string `json:"method"`
				ContentType string `json:"content_type"`
				BodyLen     int    `json:"body_len"`
				BodySHA256  string `json:"body_sha256"`
			}
			sum := sha256.Sum256(tt.body)
			want := echo{tt.path, tt.query, tt.method, tt.contentType, len(tt.body), hex.EncodeToString(sum[:])}
			if got := decode[echo](t, b); got != want {
				t.Errorf("echo = %+v\nwant   %+v", got, want)
			}
			if !bytes.Equal(s.LastRequest(), tt.body) {
				t.Errorf("LastRequest differs from the body sent (%d bytes)", len(s.LastRequest()))
			}
		})
	}
	if s.Requests() != 0 {
		t.Errorf("Requests = %d: echo paths are not model endpoints", s.Requests())
	}
}

func TestLastRequestIsACopy(t *testing.T) {
	s := startServer(t, Config{})
	c := newClient(t, testTimeout)
	if s.LastRequest() != nil {
		t.Fatal("LastRequest before any request is not nil")
	}
	post(t, c, s, "/v1/chat/completions", chatBody)
	got := s.LastRequest()
	got[0] = 'X'
	post(t, c, s, "/v1/completions", `{}`)
	if string(got) != "X"+chatBody[1:] || string(s.LastRequest()) != `{}` {
		t.Errorf("LastRequest aliasing: %q then %q", got, s.LastRequest())
	}
}

func TestMethodChecks(t *testing.T) {
	s := startServer(t, Config{})
	c := newClient(t, testTimeout)
	resp, b := post(t, c, s, "/v1/models", "")
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(string(b), `"invalid_request_error"`) {
		t.Errorf("POST /v1/models: %d %s", resp.StatusCode, b)
	}
}
