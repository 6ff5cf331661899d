package router

import (
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// usage is what one reply cost, in tokens.
type usage struct {
	input, output int
	found         bool // the reply said so; otherwise estimated
}

// usageFromJSON reads the "usage" object of a complete reply: chat,
// completions (prompt_tokens, completion_tokens), embeddings
// (prompt_tokens only) or responses (input_tokens, output_tokens).
func usageFromJSON(body []byte) usage {
	u := gjson.GetBytes(body, "usage")
	if !u.IsObject() {
		return usage{}
	}
	return usageOf(u)
}

func usageOf(u gjson.Result) usage {
	in := u.Get("prompt_tokens")
	out := u.Get("completion_tokens")
	if !in.Exists() && !out.Exists() { // the Responses API's names
		if in, out = u.Get("input_tokens"), u.Get("output_tokens"); !in.Exists() && !out.Exists() {
			return usage{}
		}
	}
	i, iok := tokenCount(in)
	o, ook := tokenCount(out)
	if !iok || !ook {
		return usage{} // not believable: estimated instead
	}
	return usage{input: i, output: o, found: true}
}

// maxUsageTokens bounds the tokens one reply may claim; more is a broken
// or hostile instance, not usage.
const maxUsageTokens = 10_000_000

// tokenCount reads one usage field: absent is 0; anything but a
// non-negative integer up to maxUsageTokens (written as one: no fraction,
// no exponent) is not a count.
func tokenCount(v gjson.Result) (int, bool) {
	if !v.Exists() {
		return 0, true
	}
	if v.Type != gjson.Number {
		return 0, false
	}
	n, err := strconv.ParseInt(v.Raw, 10, 64)
	if err != nil || n < 0 || n > maxUsageTokens {
		return 0, false
	}
	return int(n), true
}

// chunk is what an SSE data payload tells the accounting.
type chunk struct {
	usage     usage
	usageOnly bool // a chunk with no choices that only carries usage
	content   int  // bytes of generated text in this chunk
}

// inspectChunk reads one streamed chat or completions chunk.
func inspectChunk(data []byte) chunk {
	var c chunk
	if len(data) == 0 || data[0] != '{' {
		return c
	}
	res := gjson.GetManyBytes(data, "usage", "choices")
	if res[0].IsObject() {
		c.usage = usageOf(res[0])
	}
	choices, n := res[1], 0
	choices.ForEach(func(_, ch gjson.Result) bool {
		n++
		for _, path := range generatedPaths {
			if v := ch.Get(path); v.Type == gjson.String {
				c.content += len(v.Str)
			}
		}
		if tc := ch.Get("delta.tool_calls"); tc.Exists() {
			c.content += len(tc.Raw)
		}
		return true
	})
	c.usageOnly = c.usage.found && n == 0
	return c
}

// inspectResponseEvent reads one event of a Responses API stream: the text
// of its deltas (output text, reasoning, refusals, tool call arguments),
// and whether it ends the response — response.completed, .incomplete or
// .failed, whose response carries the usage, or an error event.
func inspectResponseEvent(data []byte) (c chunk, terminal bool) {
	if len(data) == 0 || data[0] != '{' {
		return c, false
	}
	res := gjson.GetManyBytes(data, "type", "delta", "response.usage")
	switch typ := res[0].Str; typ {
	case "response.completed", "response.incomplete", "response.failed", "error":
		if res[2].IsObject() {
			c.usage = usageOf(res[2])
		}
		return c, true
	default:
		if strings.HasSuffix(typ, ".delta") && res[1].Type == gjson.String {
			c.content = len(res[1].Str)
		}
	}
	return c, false
}

// generatedBytes is the size of the generated text in a complete reply,
// for estimates when it reports no usage.
func generatedBytes(api string, body []byte) int {
	if api != "responses" {
		return len(gjson.GetBytes(body, "choices.0.message.content").Str)
	}
	n := 0
	for _, t := range gjson.GetBytes(body, "output.#.content.#.text").Array() {
		for _, s := range t.Array() {
			n += len(s.Str)
		}
	}
	return n
}

// generatedPaths hold generated text inside one choice of a chunk.
var generatedPaths = []string{"delta.content", "delta.reasoning_content", "text"}

// estimateTokens guesses tokens from bytes of text: about four bytes per
// token for English text with common tokenizers. It is only used when an
// instance reports no usage, and counted with source="estimated".
func estimateTokens(bytes int) int {
	if bytes <= 0 {
		return 0
	}
	return (bytes + 3) / 4
}
