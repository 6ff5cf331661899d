package enginetest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/modelgate/modelgate/internal/leaktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

func post(t *testing.T, url, body string) (int, []byte) {
	t.Helper()
	client := &http.Client{Timeout: 60 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestLiteLLMClosesIdleConnections starts LiteLLM's proxy, checks its
// mock model answers with usage, and shows the behaviour that makes it
// worth having: uvicorn closes an idle keep-alive connection after ~5 s.
func TestLiteLLMClosesIdleConnections(t *testing.T) {
	lite := LiteLLM(t, "mock-a", "mock-b")
	code, body := post(t, lite.URL+"/v1/chat/completions", `{"model":"mock-b","messages":[{"role":"user","content":"hi"}]}`)
	if code != 200 || !strings.Contains(string(body), LiteLLMReply) || !strings.Contains(string(body), `"prompt_tokens"`) {
		t.Fatalf("chat: %d %s", code, body)
	}
	// FastAPI parses JSON only with a JSON content type.
	client := &http.Client{Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Post(lite.URL+"/v1/chat/completions", "application/x-www-form-urlencoded",
		strings.NewReader(`{"model":"mock-a","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Fatalf("form content type: got %d, want a 4xx", resp.StatusCode)
	}

	c, err := net.Dial("tcp", lite.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	r, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, r.Body)
	r.Body.Close()
	idle := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = br.ReadByte()
	closedAfter := time.Since(idle)
	if err != io.EOF {
		t.Fatalf("idle connection: read %v after %s, want EOF", err, closedAfter)
	}
	if closedAfter < 4*time.Second || closedAfter > 10*time.Second {
		t.Fatalf("idle connection closed after %s, want about 5 s", closedAfter)
	}
	t.Logf("LiteLLM closed an idle keep-alive connection after %s", closedAfter.Round(100*time.Millisecond))

	// SIGSTOP freezes it (the port still accepts), SIGCONT thaws it.
	if err := lite.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	if _, err := hc.Get(lite.URL + "/health/liveliness"); err == nil {
		t.Fatal("a stopped server answered")
	}
	if err := lite.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, lite.URL+"/health/liveliness"); code != 200 {
		t.Fatalf("after SIGCONT: %d", code)
	}
	hc.CloseIdleConnections()
}
