package mockllm

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/testkit"
)

// engineChat is a chat request whose messages are a ~4 KB system prompt of
// document doc and the question q.
func engineChat(doc, q int, stream bool) string {
	return fmt.Sprintf(`{"model":"m","stream":%v,"messages":[{"role":"system","content":"%s"},{"role":"user","content":"question %d"}]}`,
		stream, strings.Repeat(fmt.Sprintf("document %d. ", doc), 320), q)
}

func enginePost(t *testing.T, s *Server, path, body string) (int, string) {
	t.Helper()
	method := http.MethodPost
	if body == "" {
		method = http.MethodGet
	}
	resp, err := do(newClient(t, testTimeout), s, method, path, body)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A repeated prefix is served from the cache: the second request of a
// document prefills only its new tokens, and /metrics says so in vLLM's
// names.
func TestEnginePrefixCache(t *testing.T) {
	s := serveHooked(t, Config{Engine: &EngineConfig{PrefillPerToken: time.Microsecond}}, func(*Server) {})
	for q := range 2 {
		if code, body := enginePost(t, s, "/v1/chat/completions", engineChat(1, q, q == 1)); code != 200 {
			t.Fatalf("status %d: %s", code, body)
		}
	}
	st := s.Engine()
	if st.PromptTokens < 1900 || float64(st.CachedTokens) < 0.45*float64(st.PromptTokens) {
		t.Errorf("after two requests sharing a 4 KB prefix: %+v, want about half the tokens cached", st)
	}
	enginePost(t, s, "/v1/chat/completions", engineChat(2, 0, false)) // another document: no hit
	if st2 := s.Engine(); st2.CachedTokens != st.CachedTokens {
		t.Errorf("a new document hit the cache: %+v then %+v", st, st2)
	}

	_, metrics := enginePost(t, s, "/metrics", "")
	for _, want := range []string{`vllm:num_requests_waiting{model_name="mock"} 0`, `vllm:num_requests_running{model_name="mock"} 0`,
		fmt.Sprintf(`vllm:prefix_cache_hits_total{model_name="mock"} %d`, st.CachedTokens), "vllm:prefix_cache_queries_total", "vllm:kv_cache_usage_perc"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
		}
	}
}

// With one slot, concurrent requests queue: the engine reports them
// waiting, and they finish one after the other.
func TestEngineSlotsQueue(t *testing.T) {
	started := make(chan string, 16)
	s := serveHooked(t, Config{Latency: 50 * time.Millisecond, Engine: &EngineConfig{Slots: 1}}, func(s *Server) {
		s.onWait = func(what string) { started <- what }
	})
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { enginePost(t, s, "/v1/chat/completions", engineChat(i, 0, false)) })
	}
	<-started // one is in its slot
	if !testkit.Await(10*time.Second, time.Millisecond, func() bool { return s.Engine().Waiting == 2 }) {
		t.Fatalf("engine %+v, want 2 waiting", s.Engine())
	}
	if st := s.Engine(); st.Running != 1 {
		t.Errorf("engine %+v, want 1 running", st)
	}
	wg.Wait()
	if st := s.Engine(); st.Waiting != 0 || st.Running != 0 {
		t.Errorf("after all finished: %+v", st)
	}
}
