package reqjson

import "unicode/utf8"

// edit replaces body[start:end] with text.
type edit struct {
	start, end int
	text       []byte
	quoted     string // appended JSON-quoted after text, if set
}

// AppendRewrite appends to dst the body that Parse read into r, with the
// model value replaced by model (when model is not "" and the body has a
// model) and, when includeUsage is true, stream_options.include_usage set
// to true. Every other byte is kept. r must be the result of Parse(body).
func (r *Request) AppendRewrite(dst, body []byte, model string, includeUsage bool) []byte {
	var edits [2]edit
	n := 0
	if model != "" && r.ModelKind != Absent {
		edits[n] = edit{start: r.ModelSpan.Start, end: r.ModelSpan.End, quoted: model}
		n++
	}
	if includeUsage && !r.IncludeUsage {
		edits[n] = r.usageEdit()
		n++
	}
	if n == 2 && edits[1].start < edits[0].start {
		edits[0], edits[1] = edits[1], edits[0]
	}
	at := 0
	for _, e := range edits[:n] {
		dst = append(dst, body[at:e.start]...)
		dst = append(dst, e.text...)
		if e.quoted != "" {
			dst = AppendQuoted(dst, e.quoted)
		}
		at = e.end
	}
	return append(dst, body[at:]...)
}

var (
	usageMember     = []byte(`"include_usage":true`)
	usageMemberNext = []byte(`"include_usage":true,`)
	usageObject     = []byte(`{"include_usage":true}`)
	optionsMember   = []byte(`"stream_options":{"include_usage":true},`)
	optionsOnly     = []byte(`"stream_options":{"include_usage":true}`)
	trueText        = []byte(`true`)
)

// usageEdit is the edit that makes stream_options.include_usage true.
func (r *Request) usageEdit() edit {
	switch {
	case r.StreamOptionsKind == Absent:
		text := optionsMember
		if r.members == 0 {
			text = optionsOnly
		}
		return edit{start: r.open + 1, end: r.open + 1, text: text}
	case r.StreamOptionsKind != Object:
		return edit{start: r.StreamOptions.Start, end: r.StreamOptions.End, text: usageObject}
	case r.IncludeUsageSpan.Start >= 0:
		return edit{start: r.IncludeUsageSpan.Start, end: r.IncludeUsageSpan.End, text: trueText}
	}
	text := usageMemberNext
	if r.streamOptionsMembers == 0 {
		text = usageMember
	}
	at := r.StreamOptions.Start + 1
	return edit{start: at, end: at, text: text}
}

// AppendQuoted appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func AppendQuoted(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
		i++
	}
	return append(dst, '"')
}
