package router

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/mockllm"
)

// TestDrainAndDeregisterKeepStreams: an instance marked drain=true, then
// removed from the pool, gets no new picks while its stream finishes.
func TestDrainAndDeregisterKeepStreams(t *testing.T) {
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen"}}})
	m := g.mocks("qwen", 2, mockllm.Config{StreamChunks: 20, ReplyWords: 20, ChunkGap: 20 * time.Millisecond}, nil)
	// Only qwen-0 is in the pool at first, so the stream goes there.
	inst := func(s *mockllm.Server, meta map[string]string) *discovery.Instance {
		host, port := splitAddr(s.Addr())
		return &discovery.Instance{Service: "qwen", Host: host, Port: port, Weight: 1, Healthy: true, Enabled: true, Metadata: meta}
	}
	g.pool.Update("LLM@@qwen", []*discovery.Instance{inst(m[0], nil)})
	g.synced()

	resp, err := http.Post("http://"+g.addr+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"chat","stream":true,"messages":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	if line, _ := rd.ReadString('\n'); !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q", line)
	}

	g.pool.Update("LLM@@qwen", []*discovery.Instance{inst(m[0], map[string]string{"drain": "true"}), inst(m[1], nil)})
	g.synced()
	for i := range 10 {
		r := g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[]}`)
		if r.StatusCode() != 200 || string(r.Header.Peek("X-Mock-Instance")) != "qwen-1" {
			t.Fatalf("request %d after drain went to %s (%d)", i, r.Header.Peek("X-Mock-Instance"), r.StatusCode())
		}
	}
	g.pool.Update("LLM@@qwen", []*discovery.Instance{inst(m[1], nil)}) // now deregistered
	g.synced()

	events := 1
	last := ""
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			break
		}
		if d, ok := strings.CutPrefix(strings.TrimSpace(line), "data: "); ok {
			events++
			last = d
		}
	}
	if last != "[DONE]" || events < 20 {
		t.Fatalf("drained stream ended after %s events with %q", strconv.Itoa(events), last)
	}
}
