package mockllm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait in these tests; reaching it is a failure.
const testTimeout = 10 * time.Second

// startServer starts a mock on a real loopback socket, closed at cleanup.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// serveHooked is startServer for a Server whose hooks hook sets up first.
func serveHooked(t *testing.T, cfg Config, hook func(*Server)) *Server {
	t.Helper()
	s := New(cfg)
	hook(s)
	ln := listen(t)
	// Register before serving, as Start does, so that Addr is set on return.
	if err := s.register(ln); err != nil {
		t.Fatalf("register: %v", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.serve(ln) }()
	t.Cleanup(func() {
		_ = s.Close()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

// listen opens a loopback TCP listener.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return ln
}

// newClient returns an HTTP client whose connections are closed at cleanup.
func newClient(t *testing.T, timeout time.Duration) *http.Client {
	t.Helper()
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

// post sends body to path on s with optional headers (name, value pairs) and
// returns the response with its body read.
func post(t *testing.T, c *http.Client, s *Server, path, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	resp, err := do(c, s, http.MethodPost, path, body, hdr...)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: read body: %v", path, err)
	}
	return resp, b
}

// do sends a request and returns the response with its body unread.
func do(c *http.Client, s *Server, method, path, body string, hdr ...string) (*http.Response, error) {
	req, err := http.NewRequest(method, "http://"+s.Addr()+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return c.Do(req)
}

// decode unmarshals b into a new T, failing the test on error.
func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// sseEvent is one received server-sent event.
type sseEvent struct {
	data string
	at   time.Time
}

// readEvents reads events from r as they arrive, stamping each with its
// arrival time; it returns the events and the error that ended the stream
// (nil at a clean end).
func readEvents(r io.Reader) ([]sseEvent, error) {
	br := bufio.NewReader(r)
	var events []sseEvent
	var data bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err == io.EOF && line == "" && data.Len() == 0 {
				return events, nil
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return events, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			events = append(events, sseEvent{data: data.String(), at: time.Now()})
			data.Reset()
			continue
		}
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			data.WriteString(d)
		}
	}
}

// chatReply is the OpenAI chat.completion object as the SDKs read it.
type chatReply struct {
	ID                string `json:"id"`
	Object            string `json:"object"`
	Created           int64  `json:"created"`
	Model             string `json:"model"`
	SystemFingerprint string `json:"system_fingerprint"`
	Choices           []struct {
		Index   int `json:"index"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		Delta struct {
			Role    *string `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usage `json:"usage"`
}

// usage is the OpenAI usage object.
type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// apiError is the OpenAI error reply.
type apiError struct {
	Error struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
	} `json:"error"`
}
