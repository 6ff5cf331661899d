package mockllm

import (
	"strings"
	"time"
)

// Defaults filled in for zero Config fields.
const (
	DefaultName         = "mock"
	DefaultReplyWords   = 8
	DefaultStreamChunks = 8
	DefaultFailStatus   = 500
)

// Config shapes the mock's replies and faults. The zero value is a working
// configuration: instance "mock", 8-word replies in 8 stream chunks, no latency,
// no failures. Change it on a running Server with Set.
type Config struct {
	// Name is the instance name, sent in every reply as the header
	// X-Mock-Instance and in JSON replies as "system_fingerprint"; it is also the
	// one model GET /v1/models lists. Empty means "mock".
	Name string
	// Latency is the time before the reply (non-stream) or before the first
	// event of a stream; the stream's headers are sent at once. Zero means none.
	Latency time.Duration
	// Jitter adds a uniformly random extra latency in [0, Jitter). Zero means none.
	Jitter time.Duration
	// ReplyWords is the number of words in a reply's content. Zero means 8.
	ReplyWords int
	// StreamChunks is the number of content chunks in a streamed reply; their
	// contents concatenated equal the reply (a chunk may be empty when there are
	// more chunks than words). Zero means 8.
	StreamChunks int
	// ChunkGap is the pause between consecutive content chunks of a stream.
	// Zero means none.
	ChunkGap time.Duration
	// NoUsage stops the mock from reporting usage anywhere, to test token
	// estimation: no "usage" in replies and no usage chunk in streams.
	NoUsage bool
	// FailRate is the fraction, in [0, 1], of model requests (chat, completions,
	// embeddings) answered at once with FailStatus and an OpenAI-shaped error.
	// Zero means none.
	FailRate float64
	// FailStatus is the HTTP status of injected failures. Zero means 500.
	FailStatus int
	// Engine, when set, gives the mock an engine's economics: slots with a
	// waiting queue, prefill per uncached prompt token, decode per output
	// token, a prefix cache, vLLM-format /metrics. Nil means none: replies
	// cost Latency alone. Slots and CacheTokens are read once, at New.
	Engine *EngineConfig
	// Seed seeds the random source behind fail decisions and jitter, so runs
	// repeat; zero is a valid seed. Changing it with Set reseeds the source.
	Seed int64
}

// normalized returns c with defaults filled in and out-of-range values clamped.
func (c Config) normalized() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.ReplyWords <= 0 {
		c.ReplyWords = DefaultReplyWords
	}
	if c.StreamChunks <= 0 {
		c.StreamChunks = DefaultStreamChunks
	}
	if c.FailStatus == 0 {
		c.FailStatus = DefaultFailStatus
	}
	c.Latency = max(c.Latency, 0)
	c.Jitter = max(c.Jitter, 0)
	c.ChunkGap = max(c.ChunkGap, 0)
	c.FailRate = min(max(c.FailRate, 0), 1)
	return c
}

// Mode is a connection-level fault the server applies to every request.
type Mode int32

// Modes, set with Server.SetMode.
const (
	// ModeNormal answers requests.
	ModeNormal Mode = iota
	// ModeHang reads each request and answers nothing until the mode changes
	// (the request is then answered under the new mode) or the server closes.
	ModeHang
	// ModeCloseConn reads each request and closes its connection without a reply.
	ModeCloseConn
	// ModeCloseMidStream streams the first event and half of the content chunks,
	// then drops the connection: no final chunk, no [DONE], no chunked-encoding
	// terminator. A non-streamed reply is cut after half its body.
	ModeCloseMidStream
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case ModeNormal:
		return "normal"
	case ModeHang:
		return "hang"
	case ModeCloseConn:
		return "close-conn"
	case ModeCloseMidStream:
		return "close-mid-stream"
	default:
		return "unknown"
	}
}

// replyVocabulary is cycled through, word by word, to make reply text.
const replyVocabulary = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do " +
	"eiusmod tempor incididunt ut labore et dolore magna aliqua"

// state is an immutable snapshot of a normalized Config and everything derived
// from it that replies need; handlers load it once per request.
type state struct {
	cfg Config
	// reply is cfg.ReplyWords words separated by single spaces.
	reply string
	// wordEnds[i] is the byte offset in reply just after word i.
	wordEnds []int
	// fingerprint is the JSON-quoted name.
	fingerprint []byte
	// modelsBody is the rendered GET /v1/models reply.
	modelsBody []byte
}

// newState derives a state from cfg, which must be normalized.
func newState(cfg Config) *state {
	st := &state{cfg: cfg, wordEnds: make([]int, cfg.ReplyWords)}
	vocabulary := strings.Fields(replyVocabulary)
	var sb strings.Builder
	for i := range cfg.ReplyWords {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(vocabulary[i%len(vocabulary)])
		st.wordEnds[i] = sb.Len()
	}
	st.reply = sb.String()
	st.fingerprint = appendJSONString(nil, cfg.Name)

	b := append([]byte(nil), `{"object":"list","data":[{"id":`...)
	b = append(b, st.fingerprint...)
	b = append(b, `,"object":"model","created":0,"owned_by":"mockllm"}]}`...)
	st.modelsBody = b
	return st
}

// replyText returns the reply cut to at most maxWords words (no cut when
// maxWords <= 0), its word count and the finish reason.
func (st *state) replyText(maxWords int) (text string, words int, finish string) {
	n := len(st.wordEnds)
	if maxWords > 0 && maxWords < n {
		return st.reply[:st.wordEnds[maxWords-1]], maxWords, "length"
	}
	return st.reply, n, "stop"
}

// chunkText returns content chunk i of k for a reply of the given word count:
// chunk i holds words [i*words/k, (i+1)*words/k), each but the first word with
// its leading space, so the chunks concatenate to the reply.
func (st *state) chunkText(i, k, words int) string {
	from, to := st.offset(i*words/k), st.offset((i+1)*words/k)
	return st.reply[from:to]
}

// offset returns the byte offset in reply where word w (0-based) ends its
// preceding separator, i.e. the end of word w-1, or 0 for w == 0.
func (st *state) offset(w int) int {
	if w == 0 {
		return 0
	}
	return st.wordEnds[w-1]
}
