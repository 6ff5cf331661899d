package mockllm

import (
	"bytes"
	"encoding/json"
	"unicode"
	"unicode/utf8"
)

// genRequest is what the mock needs from a chat or completion request.
type genRequest struct {
	Model        string
	Stream       bool
	IncludeUsage bool
	// MaxTokens caps the reply's words; zero means no cap.
	MaxTokens    int
	PromptTokens int
}

// streamOptions is the OpenAI "stream_options" object.
type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// chatRequest is the part of a chat completion request the mock reads.
type chatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Content contentWords `json:"content"`
	} `json:"messages"`
	Stream              bool           `json:"stream"`
	StreamOptions       *streamOptions `json:"stream_options"`
	MaxTokens           int            `json:"max_tokens"`
	MaxCompletionTokens int            `json:"max_completion_tokens"`
}

// completionRequest is the part of a legacy completion request the mock reads.
type completionRequest struct {
	Model         string         `json:"model"`
	Prompt        inputWords     `json:"prompt"`
	Stream        bool           `json:"stream"`
	StreamOptions *streamOptions `json:"stream_options"`
	MaxTokens     int            `json:"max_tokens"`
}

// parseChat fills r from a chat completion request body. Prompt tokens are the
// words of every message's text plus one per message.
func (r *genRequest) parseChat(body []byte) error {
	var cr chatRequest
	if err := json.Unmarshal(body, &cr); err != nil {
		return err
	}
	*r = genRequest{
		Model:        cr.Model,
		Stream:       cr.Stream,
		IncludeUsage: cr.StreamOptions != nil && cr.StreamOptions.IncludeUsage,
		MaxTokens:    minPositive(cr.MaxTokens, cr.MaxCompletionTokens),
	}
	for _, m := range cr.Messages {
		r.PromptTokens += int(m.Content) + 1
	}
	return nil
}

// parseCompletion fills r from a legacy completion request body. Prompt tokens
// are the words of the prompt(s).
func (r *genRequest) parseCompletion(body []byte) error {
	var cr completionRequest
	if err := json.Unmarshal(body, &cr); err != nil {
		return err
	}
	*r = genRequest{
		Model:        cr.Model,
		Stream:       cr.Stream,
		IncludeUsage: cr.StreamOptions != nil && cr.StreamOptions.IncludeUsage,
		MaxTokens:    max(cr.MaxTokens, 0),
		PromptTokens: cr.Prompt.words,
	}
	return nil
}

// minPositive returns the smaller of the positive values among a and b, or 0.
func minPositive(a, b int) int {
	switch {
	case a <= 0:
		return max(b, 0)
	case b <= 0:
		return a
	default:
		return min(a, b)
	}
}

// contentWords decodes a chat message's content, a string or an array of parts,
// into the number of words of its text.
type contentWords int

// UnmarshalJSON counts the words of a string content or of the "text" of every
// part of an array content; null counts zero.
func (c *contentWords) UnmarshalJSON(b []byte) error {
	switch firstByte(b) {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = contentWords(countWords(s))
	case '[':
		var parts []struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(b, &parts); err != nil {
			return err
		}
		n := 0
		for _, p := range parts {
			n += countWords(p.Text)
		}
		*c = contentWords(n)
	case 'n':
		*c = 0
	default:
		return errBadShape
	}
	return nil
}

// inputWords decodes a completion prompt or an embeddings input: a string, an
// array of strings, an array of token ids or an array of such arrays.
type inputWords struct {
	// items holds each input's identity (a decoded string or raw JSON of a
	// token array), for hashing into embeddings.
	items [][]byte
	// words counts the words of strings plus the tokens of token arrays.
	words int
}

// UnmarshalJSON decodes any of the accepted input shapes; null is no input.
func (in *inputWords) UnmarshalJSON(b []byte) error {
	in.items, in.words = in.items[:0], 0
	switch firstByte(b) {
	case 'n':
		return nil
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		in.add([]byte(s), countWords(s))
		return nil
	case '[':
	default:
		return errBadShape
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(b, &elems); err != nil {
		return err
	}
	if len(elems) > 0 && firstByte(elems[0]) != '"' && firstByte(elems[0]) != '[' {
		// One prompt given as token ids.
		in.add(compact(b), len(elems))
		return nil
	}
	for _, e := range elems {
		switch firstByte(e) {
		case '"':
			var s string
			if err := json.Unmarshal(e, &s); err != nil {
				return err
			}
			in.add([]byte(s), countWords(s))
		case '[':
			var toks []json.RawMessage
			if err := json.Unmarshal(e, &toks); err != nil {
				return err
			}
			in.add(compact(e), len(toks))
		default:
			return errBadShape
		}
	}
	return nil
}

// add appends one input with its word count.
func (in *inputWords) add(item []byte, words int) {
	in.items = append(in.items, item)
	in.words += words
}

// compact returns b without insignificant JSON whitespace, so equal token
// arrays hash equally however they were spaced.
func compact(b []byte) []byte {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return append([]byte(nil), b...)
	}
	return out.Bytes()
}

// firstByte returns the first non-whitespace byte of a JSON value, or 0.
func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			return c
		}
	}
	return 0
}

// countWords returns the number of whitespace-separated words in s, as
// strings.Fields would split it, without allocating.
func countWords(s string) int {
	n := 0
	inWord := false
	for i := 0; i < len(s); {
		c := s[i]
		var space bool
		if c < utf8.RuneSelf {
			space = c == ' ' || (c >= '\t' && c <= '\r')
			i++
		} else {
			r, size := utf8.DecodeRuneInString(s[i:])
			space = unicode.IsSpace(r)
			i += size
		}
		if space {
			inWord = false
		} else if !inWord {
			inWord = true
			n++
		}
	}
	return n
}
