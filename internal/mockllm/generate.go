package mockllm

import (
	"strconv"
	"time"
)

// generation is one chat or completion reply being rendered, whole or as a
// stream of events.
type generation struct {
	st           *state
	chat         bool
	id           int64
	model        string
	created      int64
	text         string
	words        int
	finish       string
	promptTokens int
	// usage reports usage in a whole reply; streamUsage adds the usage chunk to
	// a stream.
	usage       bool
	streamUsage bool
}

// newGeneration prepares the reply to req under st.
func newGeneration(st *state, chat bool, id int64, req *genRequest) generation {
	text, words, finish := st.replyText(req.MaxTokens)
	return generation{
		st:           st,
		chat:         chat,
		id:           id,
		model:        req.Model,
		created:      time.Now().Unix(),
		text:         text,
		words:        words,
		finish:       finish,
		promptTokens: req.PromptTokens,
		usage:        !st.cfg.NoUsage,
		streamUsage:  !st.cfg.NoUsage && req.IncludeUsage,
	}
}

// appendHead appends the opening of a reply object of the given type, up to and
// including the comma before "choices".
func (g *generation) appendHead(b []byte, object string) []byte {
	if g.chat {
		b = append(b, `{"id":"chatcmpl-mock-`...)
	} else {
		b = append(b, `{"id":"cmpl-mock-`...)
	}
	b = strconv.AppendInt(b, g.id, 10)
	b = append(b, `","object":"`...)
	b = append(b, object...)
	b = append(b, `","created":`...)
	b = strconv.AppendInt(b, g.created, 10)
	b = append(b, `,"model":`...)
	b = appendJSONString(b, g.model)
	b = append(b, `,"system_fingerprint":`...)
	b = append(b, g.st.fingerprint...)
	return append(b, ',')
}

// appendUsage appends `"usage":{...}`.
func (g *generation) appendUsage(b []byte) []byte {
	b = append(b, `"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(g.promptTokens), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(g.words), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(g.promptTokens+g.words), 10)
	return append(b, '}')
}

// appendReply appends the whole (non-stream) reply object.
func (g *generation) appendReply(b []byte) []byte {
	if g.chat {
		b = g.appendHead(b, "chat.completion")
		b = append(b, `"choices":[{"index":0,"message":{"role":"assistant","content":`...)
		b = appendJSONString(b, g.text)
		b = append(b, `},"logprobs":null,"finish_reason":"`...)
	} else {
		b = g.appendHead(b, "text_completion")
		b = append(b, `"choices":[{"text":`...)
		b = appendJSONString(b, g.text)
		b = append(b, `,"index":0,"logprobs":null,"finish_reason":"`...)
	}
	b = append(b, g.finish...)
	b = append(b, `"}]`...)
	if g.usage {
		b = append(b, ',')
		b = g.appendUsage(b)
	}
	return append(b, '}')
}

// appendStreamPrefix appends what every chunk event but [DONE] starts with:
// `data: {"id":...,"choices":`.
func (g *generation) appendStreamPrefix(b []byte) []byte {
	b = append(b, "data: "...)
	if g.chat {
		b = g.appendHead(b, "chat.completion.chunk")
	} else {
		b = g.appendHead(b, "text_completion")
	}
	return append(b, `"choices":`...)
}

// appendRoleChoices appends the choices of a chat stream's first event.
func appendRoleChoices(b []byte) []byte {
	return append(b, `[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`...)
}

// appendContentChoices appends the choices of a content chunk carrying text.
func (g *generation) appendContentChoices(b []byte, text string) []byte {
	if g.chat {
		b = append(b, `[{"index":0,"delta":{"content":`...)
		b = appendJSONString(b, text)
		return append(b, `},"logprobs":null,"finish_reason":null}]}`...)
	}
	b = append(b, `[{"text":`...)
	b = appendJSONString(b, text)
	return append(b, `,"index":0,"logprobs":null,"finish_reason":null}]}`...)
}

// appendFinalChoices appends the choices of the chunk carrying finish_reason.
func (g *generation) appendFinalChoices(b []byte) []byte {
	if g.chat {
		b = append(b, `[{"index":0,"delta":{},"logprobs":null,"finish_reason":"`...)
	} else {
		b = append(b, `[{"text":"","index":0,"logprobs":null,"finish_reason":"`...)
	}
	b = append(b, g.finish...)
	return append(b, `"}]}`...)
}

// appendUsageChoices appends the empty choices and usage of the usage chunk.
func (g *generation) appendUsageChoices(b []byte) []byte {
	b = append(b, `[],`...)
	b = g.appendUsage(b)
	return append(b, '}')
}
