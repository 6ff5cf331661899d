package mockllm

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// parsedStream is a received stream taken apart.
type parsedStream struct {
	first   chatReply // the first event (the role event of a chat stream)
	content []string  // content of every content chunk, in order
	finish  string
	usage   *usage
	done    bool // ended with [DONE]
}

// parseStream checks each event's envelope and collects the stream's parts.
func parseStream(t *testing.T, events []sseEvent, chat bool) parsedStream {
	t.Helper()
	var p parsedStream
	for i, ev := range events {
		if p.done {
			t.Fatalf("event after [DONE]: %q", ev.data)
		}
		if ev.data == "[DONE]" {
			p.done = true
			continue
		}
		r := decode[chatReply](t, []byte(ev.data))
		wantObject := "text_completion"
		if chat {
			wantObject = "chat.completion.chunk"
		}
		if r.Object != wantObject || r.ID == "" || r.Model != "m" {
			t.Fatalf("event %d: object/id/model = %q/%q/%q", i, r.Object, r.ID, r.Model)
		}
		if i == 0 {
			p.first = r
			if chat {
				if len(r.Choices) != 1 || r.Choices[0].Delta.Role == nil || *r.Choices[0].Delta.Role != "assistant" {
					t.Fatalf("first chat event has no assistant role: %s", ev.data)
				}
				continue
			}
		}
		if r.Usage != nil {
			if len(r.Choices) != 0 {
				t.Errorf("usage chunk has choices: %s", ev.data)
			}
			p.usage = r.Usage
			continue
		}
		if len(r.Choices) != 1 {
			t.Fatalf("event %d has %d choices", i, len(r.Choices))
		}
		ch := r.Choices[0]
		if ch.FinishReason != nil {
			p.finish = *ch.FinishReason
			continue
		}
		if chat {
			if ch.Delta.Content == nil {
				t.Fatalf("content chunk without content: %s", ev.data)
			}
			p.content = append(p.content, *ch.Delta.Content)
		} else {
			p.content = append(p.content, ch.Text)
		}
	}
	return p
}

func TestStream(t *testing.T) {
	tests := []struct {
		name         string
		path         string
		cfg          Config
		body         string
		wantChunks   int
		wantReply    string
		wantFinish   string
		wantUsage    *usage
		wantInstance string
	}{
		{
			name:       "chat without include_usage",
			path:       "/v1/chat/completions",
			body:       `{"model":"m","stream":true,"messages":[{"role":"user","content":"a b"}]}`,
			wantChunks: 8,
			wantReply:  "lorem ipsum dolor sit amet consectetur adipiscing elit",
			wantFinish: "stop",
		},
		{
			name:       "chat with include_usage",
			path:       "/v1/chat/completions",
			cfg:        Config{ReplyWords: 5, StreamChunks: 3},
			body:       `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a b"}]}`,
			wantChunks: 3,
			wantReply:  "lorem ipsum dolor sit amet",
			wantFinish: "stop",
			wantUsage:  &usage{PromptTokens: 3, CompletionTokens: 5, TotalTokens: 8},
		},
		{
			name:       "chat include_usage with NoUsage",
			path:       "/v1/chat/completions",
			cfg:        Config{NoUsage: true},
			body:       `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}`,
			wantChunks: 8,
			wantReply:  "lorem ipsum dolor sit amet consectetur adipiscing elit",
			wantFinish: "stop",
		},
		{
			name:       "more chunks than words",
			path:       "/v1/chat/completions",
			cfg:        Config{ReplyWords: 2, StreamChunks: 5},
			body:       `{"model":"m","stream":true,"messages":[]}`,
			wantChunks: 5,
			wantReply:  "lorem ipsum",
			wantFinish: "stop",
		},
		{
			name:       "chat max_tokens",
			path:       "/v1/chat/completions",
			body:       `{"model":"m","stream":true,"max_tokens":4,"stream_options":{"include_usage":true},"messages":[]}`,
			wantChunks: 8,
			wantReply:  "lorem ipsum dolor sit",
			wantFinish: "length",
			wantUsage:  &usage{PromptTokens: 0, CompletionTokens: 4, TotalTokens: 4},
		},
		{
			name:       "completions with include_usage",
			path:       "/v1/completions",
			cfg:        Config{StreamChunks: 4},
			body:       `{"model":"m","stream":true,"stream_options":{"include_usage":true},"prompt":"one two three"}`,
			wantChunks: 4,
			wantReply:  "lorem ipsum dolor sit amet consectetur adipiscing elit",
			wantFinish: "stop",
			wantUsage:  &usage{PromptTokens: 3, CompletionTokens: 8, TotalTokens: 11},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tt.cfg)
			c := newClient(t, testTimeout)
			resp, err := do(c, s, http.MethodPost, tt.path, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Errorf("Content-Type = %q", ct)
			}
			if resp.ContentLength != -1 || len(resp.TransferEncoding) == 0 {
				t.Errorf("ContentLength %d, TransferEncoding %v: want chunked", resp.ContentLength, resp.TransferEncoding)
			}
			events, err := readEvents(resp.Body)
			if err != nil {
				t.Fatalf("read stream: %v", err)
			}
			chat := tt.path == "/v1/chat/completions"
			p := parseStream(t, events, chat)
			if len(p.content) != tt.wantChunks {
				t.Errorf("content chunks = %d, want %d", len(p.content), tt.wantChunks)
			}
			if got := strings.Join(p.content, ""); got != tt.wantReply {
				t.Errorf("reply = %q, want %q", got, tt.wantReply)
			}
			if p.finish != tt.wantFinish || !p.done {
				t.Errorf("finish %q done %v, want %q and [DONE]", p.finish, p.done, tt.wantFinish)
			}
			switch {
			case tt.wantUsage == nil && p.usage != nil:
				t.Errorf("usage chunk %+v, want none", *p.usage)
			case tt.wantUsage != nil && (p.usage == nil || *p.usage != *tt.wantUsage):
				t.Errorf("usage = %+v, want %+v", p.usage, *tt.wantUsage)
			}
		})
	}
}

func TestStreamPacing(t *testing.T) {
	const (
		chunks  = 6
		gap     = 30 * time.Millisecond
		latency = 150 * time.Millisecond
	)
	s := startServer(t, Config{StreamChunks: chunks, ChunkGap: gap, Latency: latency})
	c := newClient(t, testTimeout)
	start := time.Now()
	resp, err := do(c, s, http.MethodPost, "/v1/chat/completions", `{"model":"m","stream":true,"messages":[]}`)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	headersAt := time.Now()
	events, err := readEvents(resp.Body)
	if err != nil {
		t.Fatalf("read stream: %v", err)
	}
	if len(events) != 1+chunks+2 {
		t.Fatalf("events = %d, want %d", len(events), 1+chunks+2)
	}
	// The headers come at once; the latency falls before the first event.
	if wait := events[0].at.Sub(headersAt); wait < latency*8/10 {
		t.Errorf("first event %v after the headers, want >= %v", wait, latency*8/10)
	}
	if ttft := events[0].at.Sub(start); ttft < latency {
		t.Errorf("first event after %v, want >= %v", ttft, latency)
	}
	// Each content chunk is flushed on its own, ChunkGap apart.
	spread := events[len(events)-1].at.Sub(events[0].at)
	if want := time.Duration(chunks-1) * gap * 8 / 10; spread < want {
		t.Errorf("first to last event %v, want >= %v", spread, want)
	}
	for i := 2; i <= chunks; i++ {
		if d := events[i].at.Sub(events[i-1].at); d < gap/2 {
			t.Errorf("gap before content chunk %d = %v, want about %v", i-1, d, gap)
		}
	}
}

func TestStreamStopsWhenClientLeaves(t *testing.T) {
	ended := make(chan error, 1)
	s := serveHooked(t, Config{StreamChunks: 100000, ChunkGap: time.Millisecond}, func(s *Server) {
		s.onStreamEnd = func(err error) { ended <- err }
	})
	c := newClient(t, testTimeout)
	resp, err := do(c, s, http.MethodPost, "/v1/chat/completions", `{"model":"m","stream":true,"messages":[]}`)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	resp.Body.Close() // a streamed body is not drained: this closes the connection
	select {
	case err := <-ended:
		if err == nil || errors.Is(err, errServerDown) {
			t.Errorf("stream ended with %v, want a write error", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("stream still running after the client left")
	}
}
