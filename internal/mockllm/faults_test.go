package mockllm

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

const chatBody = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`

func TestFailRate(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		path, body string
		wantStatus int
		wantType   string
	}{
		{"chat 500", Config{FailRate: 1}, "/v1/chat/completions", chatBody, 500, "server_error"},
		{"stream 503", Config{FailRate: 1, FailStatus: 503}, "/v1/chat/completions", `{"stream":true}`, 503, "server_error"},
		{"completions 429", Config{FailRate: 1, FailStatus: 429}, "/v1/completions", `{"prompt":"x"}`, 429, "rate_limit_error"},
		{"embeddings 400", Config{FailRate: 1, FailStatus: 400}, "/v1/embeddings", `{"input":"x"}`, 400, "invalid_request_error"},
		{"bad JSON", Config{}, "/v1/chat/completions", `{"model":`, 400, "invalid_request_error"},
		{"wrong JSON type", Config{}, "/v1/chat/completions", `{"messages":[{"content":42}]}`, 400, "invalid_request_error"},
		{"bad embeddings input", Config{}, "/v1/embeddings", `{"input":{}}`, 400, "invalid_request_error"},
		{"GET on a model endpoint", Config{}, "/v1/chat/completions", "", 405, "invalid_request_error"},
		{"unknown path", Config{}, "/v2/chat", "", 404, "invalid_request_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tt.cfg)
			c := newClient(t, testTimeout)
			method := http.MethodPost
			if tt.wantStatus == 405 {
				method = http.MethodGet
			}
			resp, err := do(c, s, method, tt.path, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.wantStatus, b)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			e := decode[apiError](t, b)
			if e.Error.Message == "" || e.Error.Type != tt.wantType || string(e.Error.Code) != "null" {
				t.Errorf("error = %+v, want type %q and code null", e.Error, tt.wantType)
			}
		})
	}
}

func TestFailRateFraction(t *testing.T) {
	const n = 400
	s := startServer(t, Config{FailRate: 0.25, Seed: 42})
	c := newClient(t, testTimeout)
	failed := 0
	for range n {
		resp, _ := post(t, c, s, "/v1/chat/completions", chatBody)
		if resp.StatusCode == http.StatusInternalServerError {
			failed++
		}
	}
	if failed < n*15/100 || failed > n*35/100 {
		t.Errorf("%d of %d failed, want about 25%%", failed, n)
	}
	if s.Requests() != n {
		t.Errorf("Requests = %d, want %d", s.Requests(), n)
	}
}

func TestSetAtRuntime(t *testing.T) {
	s := startServer(t, Config{Name: "a"})
	c := newClient(t, testTimeout)

	resp, b := post(t, c, s, "/v1/chat/completions", chatBody)
	if resp.StatusCode != 200 || decode[chatReply](t, b).Choices[0].Message.Content != "lorem ipsum dolor sit amet consectetur adipiscing elit" {
		t.Fatalf("before Set: %d %s", resp.StatusCode, b)
	}

	s.Set(func(c *Config) { c.Name, c.ReplyWords = "b", 2 })
	resp, b = post(t, c, s, "/v1/chat/completions", chatBody)
	r := decode[chatReply](t, b)
	if r.Choices[0].Message.Content != "lorem ipsum" || resp.Header.Get("X-Mock-Instance") != "b" || r.SystemFingerprint != "b" {
		t.Errorf("after Set: content %q instance %q", r.Choices[0].Message.Content, resp.Header.Get("X-Mock-Instance"))
	}
	if cfg := s.Config(); cfg.Name != "b" || cfg.ReplyWords != 2 || cfg.StreamChunks != DefaultStreamChunks {
		t.Errorf("Config() = %+v", cfg)
	}

	s.Set(func(c *Config) { c.FailRate = 1 })
	if resp, b = post(t, c, s, "/v1/chat/completions", chatBody); resp.StatusCode != 500 {
		t.Errorf("with FailRate 1: %d %s", resp.StatusCode, b)
	}
	s.Set(func(c *Config) { c.FailRate = 0 })
	if resp, b = post(t, c, s, "/v1/chat/completions", chatBody); resp.StatusCode != 200 {
		t.Errorf("with FailRate 0: %d %s", resp.StatusCode, b)
	}

	// A slower mock: the client's timeout now fires.
	s.Set(func(c *Config) { c.Latency = time.Hour })
	slow := newClient(t, 100*time.Millisecond)
	if _, err := do(slow, s, http.MethodPost, "/v1/chat/completions", chatBody); !isTimeout(err) {
		t.Errorf("with 1h latency: err = %v, want a timeout", err)
	}
}

func TestModeHang(t *testing.T) {
	t.Run("client times out", func(t *testing.T) {
		s := startServer(t, Config{})
		s.SetMode(ModeHang)
		c := newClient(t, 100*time.Millisecond)
		if _, err := do(c, s, http.MethodPost, "/v1/chat/completions", chatBody); !isTimeout(err) {
			t.Fatalf("err = %v, want a timeout", err)
		}
		if s.Requests() != 1 || string(s.LastRequest()) != chatBody {
			t.Errorf("Requests %d LastRequest %q: the request was not read", s.Requests(), s.LastRequest())
		}
	})

	for _, release := range []string{"mode change", "Close"} {
		t.Run("released by "+release, func(t *testing.T) {
			hanging := make(chan struct{}, 1)
			s := serveHooked(t, Config{}, func(s *Server) {
				s.onWait = func(string) { hanging <- struct{}{} }
			})
			s.SetMode(ModeHang)
			c := newClient(t, testTimeout)
			type result struct {
				status int
				err    error
			}
			done := make(chan result, 1)
			go func() {
				resp, err := do(c, s, http.MethodPost, "/v1/chat/completions", chatBody)
				if err != nil {
					done <- result{err: err}
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				done <- result{status: resp.StatusCode}
			}()
			<-hanging
			if release == "Close" {
				if err := s.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
			} else {
				s.SetMode(ModeNormal)
			}
			r := <-done
			switch {
			case release == "Close" && r.err == nil && r.status != http.StatusServiceUnavailable:
				t.Errorf("after Close: status %d, want 503 or an error", r.status)
			case release != "Close" && (r.err != nil || r.status != http.StatusOK):
				t.Errorf("after mode change: status %d err %v, want 200", r.status, r.err)
			}
		})
	}
}

func TestModeCloseConn(t *testing.T) {
	s := startServer(t, Config{})
	c := newClient(t, testTimeout)
	s.SetMode(ModeCloseConn)
	_, err := do(c, s, http.MethodPost, "/v1/chat/completions", chatBody)
	if err == nil || isTimeout(err) {
		t.Fatalf("err = %v, want a closed connection", err)
	}
	if s.Requests() != 1 {
		t.Errorf("Requests = %d, want 1", s.Requests())
	}
	s.SetMode(ModeNormal)
	if resp, b := post(t, c, s, "/v1/chat/completions", chatBody); resp.StatusCode != 200 {
		t.Errorf("after ModeNormal: %d %s", resp.StatusCode, b)
	}
}

func TestModeCloseMidStream(t *testing.T) {
	tests := []struct {
		name       string
		path, body string
		wantEvents int
	}{
		{"chat", "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`, 1 + 3},
		{"completions", "/v1/completions", `{"model":"m","stream":true,"prompt":"x"}`, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Config{StreamChunks: 6})
			s.SetMode(ModeCloseMidStream)
			c := newClient(t, testTimeout)
			resp, err := do(c, s, http.MethodPost, tt.path, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			events, err := readEvents(resp.Body)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("stream ended with %v, want unexpected EOF", err)
			}
			if len(events) != tt.wantEvents {
				t.Errorf("events = %d, want %d", len(events), tt.wantEvents)
			}
			for _, ev := range events {
				if ev.data == "[DONE]" {
					t.Error("got [DONE]")
				}
			}
		})
	}

	t.Run("non-stream reply is cut", func(t *testing.T) {
		s := startServer(t, Config{})
		s.SetMode(ModeCloseMidStream)
		c := newClient(t, testTimeout)
		resp, err := do(c, s, http.MethodPost, "/v1/chat/completions", chatBody)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if !errors.Is(err, io.ErrUnexpectedEOF) || int64(len(b)) != resp.ContentLength/2 {
			t.Errorf("read %d of %d bytes, err %v; want half and unexpected EOF", len(b), resp.ContentLength, err)
		}
	})
}

func TestClose(t *testing.T) {
	t.Run("idempotent", func(t *testing.T) {
		s := startServer(t, Config{})
		addr := s.Addr()
		for i := range 3 {
			if err := s.Close(); err != nil {
				t.Fatalf("Close #%d: %v", i+1, err)
			}
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Error("still accepting after Close")
		}
		if err := s.Serve(listen(t)); !errors.Is(err, ErrClosed) {
			t.Errorf("Serve after Close = %v, want ErrClosed", err)
		}
	})

	t.Run("connection that never sends", func(t *testing.T) {
		s := startServer(t, Config{})
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := c.SetReadDeadline(time.Now().Add(testTimeout)); err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(c)
		if strings.Contains(string(b), "Date:") {
			t.Errorf("reply carries a Date header: %q", b)
		}
	})

	// Close must end sleeping handlers and paced streams at once.
	tests := []struct {
		name string
		cfg  Config
		path string
		body string
	}{
		{"during latency", Config{Latency: time.Hour}, "/v1/chat/completions", chatBody},
		{"during embeddings latency", Config{Latency: time.Hour}, "/v1/embeddings", `{"input":"x"}`},
		{"during stream latency", Config{Latency: time.Hour}, "/v1/chat/completions", `{"stream":true}`},
		{"during chunk gap", Config{ChunkGap: time.Hour}, "/v1/completions", `{"stream":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			waiting := make(chan struct{}, 1)
			s := serveHooked(t, tt.cfg, func(s *Server) {
				s.onWait = func(string) { waiting <- struct{}{} }
			})
			c := newClient(t, testTimeout)
			done := make(chan error, 1)
			go func() {
				resp, err := do(c, s, http.MethodPost, tt.path, tt.body)
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode == http.StatusOK {
						err = errors.New("complete reply")
					}
				}
				done <- err
			}()
			if tt.cfg.Latency > 0 {
				<-waiting
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := <-done; err != nil && err.Error() == "complete reply" {
				t.Error("got a complete reply despite Close")
			}
		})
	}
}

func TestUnreadableRequest(t *testing.T) {
	s := startServer(t, Config{Name: "x"})
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	reply := string(b)
	for _, want := range []string{"HTTP/1.1 400 ", "X-Mock-Instance: x", `"type":"invalid_request_error"`} {
		if !strings.Contains(reply, want) {
			t.Errorf("reply lacks %q:\n%s", want, reply)
		}
	}
	if strings.Contains(reply, "Date:") {
		t.Errorf("reply carries a Date header:\n%s", reply)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := startServer(t, Config{StreamChunks: 4})
	c := newClient(t, testTimeout)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				body := chatBody
				if (i+j)%2 == 0 {
					body = `{"model":"m","stream":true,"messages":[]}`
				}
				resp, err := do(c, s, http.MethodPost, "/v1/chat/completions", body)
				if err != nil {
					continue // ModeCloseConn may be on
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			s.Set(func(c *Config) { c.ReplyWords = 1 + i%10; c.FailRate = float64(i%3) / 4 })
			s.SetMode([]Mode{ModeNormal, ModeCloseConn, ModeCloseMidStream}[i%3])
			_ = s.LastRequest()
		}
		s.SetMode(ModeNormal)
	})
	wg.Wait()
	if s.Requests() == 0 {
		t.Error("no request arrived")
	}
}

// isTimeout reports whether err is a client timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
