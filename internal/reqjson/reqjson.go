package reqjson

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// DefaultMaxDepth is the nesting bound Parse applies when given none: the
// top-level object is depth 1.
const DefaultMaxDepth = 64

// Kind is the JSON type of an extracted value; Absent when the key is not
// in the body.
type Kind uint8

// The kinds of a value.
const (
	Absent Kind = iota
	String
	Number
	True
	False
	Null
	Object
	Array
)

// Span locates a value in the body: body[Start:End] is its raw JSON text.
type Span struct{ Start, End int }

// Request is what Parse extracts from a body. Each field is its top-level
// value unless said otherwise; a Kind of Absent means the key is missing.
type Request struct {
	Model     string // decoded, when ModelKind is String
	ModelKind Kind
	ModelSpan Span

	// Stream is true only when "stream" is the literal true.
	Stream     bool
	StreamKind Kind

	StreamOptions     Span
	StreamOptionsKind Kind
	// IncludeUsage is stream_options.include_usage is the literal true
	// (of duplicated keys inside stream_options, the last, as decoders
	// read it); IncludeUsageSpan locates that value, Start is -1 if none.
	IncludeUsage     bool
	IncludeUsageSpan Span
	// streamOptionsMembers counts the members of stream_options.
	streamOptionsMembers int

	// MaxTokens is max_tokens when it is a positive integer that fits an
	// int64, else max_completion_tokens when that is, else
	// max_output_tokens (the Responses API's); 0 otherwise.
	MaxTokens       int64
	Temperature     float64 // when TemperatureKind is Number (±Inf past float64)
	TemperatureKind Kind
	N               int64 // when NKind is Number and an integer; else 0
	NKind           Kind
	User            string // decoded, when UserKind is String
	UserKind        Kind

	// PromptBytes is the decoded size of the text the request asks the
	// model to read: every string under prompt and input, and the strings
	// of "content" and "text" members under messages.
	PromptBytes int
	// PromptSpan locates the raw value of messages (chat) or prompt
	// (completions), whichever comes last; it is empty (Start = End) when
	// neither is present. Prefix-affinity scoring hashes its leading bytes.
	PromptSpan Span
	// InputSpan locates the raw value of input: the Responses API's prompt
	// (and embeddings' input), for prefix-affinity scoring of responses.
	InputSpan Span

	open                                int // offset of the top-level '{'
	members                             int // top-level members
	maxTokens, maxCompletion, maxOutput int64
}

// ErrorCode says why a body was refused.
type ErrorCode uint8

// The error codes.
const (
	ErrSyntax    ErrorCode = iota + 1 // not JSON, or not UTF-8
	ErrDepth                          // nested deeper than the bound
	ErrNotObject                      // JSON, but not an object
	ErrDuplicate                      // a top-level key appears twice
)

// Error is Parse's error.
type Error struct {
	Code   ErrorCode
	Offset int    // byte offset of the problem
	Key    string // the duplicated key (decoded), for ErrDuplicate
	Depth  int    // the bound, for ErrDepth
}

func (e *Error) Error() string {
	switch e.Code {
	case ErrDepth:
		return "nested deeper than " + strconv.Itoa(e.Depth) + " levels"
	case ErrNotObject:
		return "the body must be a JSON object"
	case ErrDuplicate:
		return "duplicate key " + quoteShort(e.Key)
	}
	return "syntax error at byte " + strconv.Itoa(e.Offset)
}

// quoteShort quotes a key for a message, cut at 64 bytes.
func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}

// context is what the value being read means to the extraction.
type context uint8

const (
	inOther         context = iota
	inPrompt                // every string counts as prompt
	inMessages              // strings of "content" and "text" members count
	inStreamOptions         // the top-level stream_options object
)

type keyRef struct {
	escaped    bool // bytes are in scanner.keys, else in the body
	start, end int
}

type scanner struct {
	data     []byte
	maxDepth int
	req      *Request
	top      []keyRef // top-level keys so far
	keys     []byte   // decoded escaped keys
	seen     map[string]struct{}
	err      *Error
	dup      *Error // the first duplicated top-level key
}

var scanners = sync.Pool{New: func() any { return &scanner{top: make([]keyRef, 0, 32)} }}

// linearKeys is how many top-level keys are compared one by one before a
// map takes over (a hostile body may send thousands).
const linearKeys = 32

// Parse reads body into req. maxDepth ≤ 0 means DefaultMaxDepth. The error,
// if any, is an *Error.
func Parse(body []byte, maxDepth int, req *Request) error {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	*req = Request{IncludeUsageSpan: Span{-1, -1}}
	s := scanners.Get().(*scanner)
	s.data, s.maxDepth, s.req, s.err, s.dup = body, maxDepth, req, nil, nil
	s.top, s.keys, s.seen = s.top[:0], s.keys[:0], nil
	err := s.document()
	switch {
	case req.maxTokens > 0:
		req.MaxTokens = req.maxTokens
	case req.maxCompletion > 0:
		req.MaxTokens = req.maxCompletion
	case req.maxOutput > 0:
		req.MaxTokens = req.maxOutput
	}
	s.data, s.req = nil, nil
	if cap(s.keys) <= 1<<16 && cap(s.top) <= 1<<10 {
		scanners.Put(s)
	}
	if err != nil {
		return err
	}
	return nil
}

func (s *scanner) fail(code ErrorCode, at int) (int, bool) {
	if s.err == nil {
		s.err = &Error{Code: code, Offset: at}
		if code == ErrDepth {
			s.err.Depth = s.maxDepth
		}
	}
	return at, false
}

func (s *scanner) document() error {
	d := s.data
	i := SkipSpace(d, 0)
	if i < len(d) && d[i] != '{' {
		// Valid JSON that is not an object is its own error.
		j, ok := s.value(i, 0, inOther)
		switch {
		case !ok:
			return s.err
		case SkipSpace(d, j) != len(d):
			return &Error{Code: ErrSyntax, Offset: SkipSpace(d, j)}
		}
		return &Error{Code: ErrNotObject, Offset: i}
	}
	if i >= len(d) {
		return &Error{Code: ErrSyntax, Offset: i}
	}
	s.req.open = i
	j, ok := s.object(i+1, 1, inOther, true)
	if !ok {
		return s.err
	}
	if j = SkipSpace(d, j); j != len(d) {
		return &Error{Code: ErrSyntax, Offset: j}
	}
	if s.dup != nil {
		return s.dup
	}
	return nil
}

// SkipSpace returns the offset of the first byte from i that is not JSON
// whitespace.
func SkipSpace(d []byte, i int) int {
	for i < len(d) {
		switch d[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value reads the value at i (depth is that of its container) and returns
// the offset after it.
func (s *scanner) value(i, depth int, ctx context) (int, bool) {
	d := s.data
	if i >= len(d) {
		return s.fail(ErrSyntax, i)
	}
	switch c := d[i]; {
	case c == '{':
		return s.object(i+1, depth+1, ctx, false)
	case c == '[':
		return s.array(i+1, depth+1, ctx)
	case c == '"':
		j, n, _, ok := s.str(i + 1)
		if ok && ctx == inPrompt {
			s.req.PromptBytes += n
		}
		return j, ok
	case c == '-' || c >= '0' && c <= '9':
		return s.number(i)
	case c == 't':
		return s.literal(i, "true")
	case c == 'f':
		return s.literal(i, "false")
	case c == 'n':
		return s.literal(i, "null")
	}
	return s.fail(ErrSyntax, i)
}

func (s *scanner) literal(i int, lit string) (int, bool) {
	if !bytes.HasPrefix(s.data[i:], []byte(lit)) {
		return s.fail(ErrSyntax, i)
	}
	return i + len(lit), true
}

func kindAt(c byte) Kind {
	switch c {
	case '"':
		return String
	case '{':
		return Object
	case '[':
		return Array
	case 't':
		return True
	case 'f':
		return False
	case 'n':
		return Null
	}
	return Number
}

// object reads the members after '{' and returns the offset after '}'.
// top is true for the document's own object.
func (s *scanner) object(i, depth int, ctx context, top bool) (int, bool) {
	if depth > s.maxDepth {
		return s.fail(ErrDepth, i-1)
	}
	d := s.data
	i = SkipSpace(d, i)
	if i < len(d) && d[i] == '}' {
		return i + 1, true
	}
	for n := 0; ; n++ {
		if i >= len(d) || d[i] != '"' {
			return s.fail(ErrSyntax, i)
		}
		keyStart := i + 1
		keyEnd, _, escaped, ok := s.str(keyStart)
		if !ok {
			return keyEnd, false
		}
		key := d[keyStart : keyEnd-1]
		var ref keyRef
		if escaped {
			start := len(s.keys)
			s.keys = appendUnescaped(s.keys, key)
			ref = keyRef{escaped: true, start: start, end: len(s.keys)}
			key = s.keys[start:]
		} else {
			ref = keyRef{start: keyStart, end: keyEnd - 1}
		}
		if top {
			if s.duplicate(ref, key) {
				if s.dup == nil { // reported once the whole body proved to be JSON
					s.dup = &Error{Code: ErrDuplicate, Offset: keyStart - 1, Key: string(key)}
				}
			} else {
				s.top = append(s.top, ref)
			}
			s.req.members++
		}
		i = SkipSpace(d, keyEnd)
		if i >= len(d) || d[i] != ':' {
			return s.fail(ErrSyntax, i)
		}
		i = SkipSpace(d, i+1)
		if i >= len(d) {
			return s.fail(ErrSyntax, i)
		}
		vstart := i
		sub := ctx
		if top && needsFold(key) {
			key = lowerFold(key) // "Model" is the model to Go's encoding/json, so here too
		}
		switch {
		case top:
			sub = topContext(key)
		case ctx == inStreamOptions:
			sub = inOther
			s.req.streamOptionsMembers++
		case ctx == inMessages && d[i] == '"' && (string(key) == "content" || string(key) == "text"):
			sub = inPrompt
		}
		if i, ok = s.value(vstart, depth, sub); !ok {
			return i, false
		}
		if top {
			s.topField(key, vstart, i)
		} else if ctx == inStreamOptions && string(key) == "include_usage" {
			s.req.IncludeUsage = d[vstart] == 't'
			s.req.IncludeUsageSpan = Span{vstart, i}
		}
		i = SkipSpace(d, i)
		if i >= len(d) {
			return s.fail(ErrSyntax, i)
		}
		switch d[i] {
		case ',':
			i = SkipSpace(d, i+1)
		case '}':
			return i + 1, true
		default:
			return s.fail(ErrSyntax, i)
		}
	}
}

// topContext is how the value of a top-level key is read.
func topContext(key []byte) context {
	switch string(key) {
	case "prompt", "input":
		return inPrompt
	case "messages":
		return inMessages
	case "stream_options":
		return inStreamOptions
	}
	return inOther
}

// duplicate reports whether key was already a top-level key, keys
// compared without case as Go's encoding/json matches them (Unicode simple
// folding: "Model", "MODEL" and "model" are one key to an engine written in
// Go, so they must be one key here too, or the route and the ACL would read
// one model and the engine another).
func (s *scanner) duplicate(ref keyRef, key []byte) bool {
	if s.seen != nil {
		f := string(foldKey(key))
		if _, ok := s.seen[f]; ok {
			return true
		}
		s.seen[f] = struct{}{}
		return false
	}
	for _, k := range s.top {
		if bytes.EqualFold(s.keyBytes(k), key) {
			return true
		}
	}
	if len(s.top) >= linearKeys {
		s.seen = make(map[string]struct{}, 2*linearKeys)
		for _, k := range s.top {
			s.seen[string(foldKey(s.keyBytes(k)))] = struct{}{}
		}
		s.seen[string(foldKey(key))] = struct{}{}
	}
	return false
}

// foldKey is key case-folded: foldKey(a) == foldKey(b) exactly when
// bytes.EqualFold(a, b).
func foldKey(key []byte) []byte {
	out := make([]byte, 0, len(key))
	for i := 0; i < len(key); {
		if c := key[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(key[i:])
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		out = utf8.AppendRune(out, least)
		i += n
	}
	return out
}

func (s *scanner) keyBytes(k keyRef) []byte {
	if k.escaped {
		return s.keys[k.start:k.end]
	}
	return s.data[k.start:k.end]
}

// topField extracts a top-level value at data[start:end].
func (s *scanner) topField(key []byte, start, end int) {
	r, raw := s.req, s.data[start:end]
	k := kindAt(raw[0])
	switch string(key) { // folded by object
	case "model":
		r.ModelKind, r.ModelSpan = k, Span{start, end}
		if k == String {
			r.Model = decodeString(raw)
		}
	case "stream":
		r.StreamKind, r.Stream = k, k == True
	case "stream_options":
		r.StreamOptionsKind, r.StreamOptions = k, Span{start, end}
	case "max_tokens":
		if k == Number {
			r.maxTokens = parseInt(raw)
		}
	case "max_completion_tokens":
		if k == Number {
			r.maxCompletion = parseInt(raw)
		}
	case "max_output_tokens":
		if k == Number {
			r.maxOutput = parseInt(raw)
		}
	case "temperature":
		r.TemperatureKind = k
		if k == Number {
			r.Temperature, _ = strconv.ParseFloat(string(raw), 64)
		}
	case "n":
		r.NKind = k
		if k == Number {
			r.N = parseInt(raw)
		}
	case "messages", "prompt":
		r.PromptSpan = Span{start, end}
	case "input":
		r.InputSpan = Span{start, end}
	case "user":
		r.UserKind = k
		if k == String {
			r.User = decodeString(raw)
		}
	}
}

// needsFold reports whether key holds a capital or a non-ASCII byte, which
// Go's encoding/json may fold onto a lowercase name.
func needsFold(key []byte) bool {
	for _, c := range key {
		if c-'A' <= 'Z'-'A' || c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// lowerFold is key as Go's encoding/json matches it against lowercase
// names: ASCII letters lowered, and the runes whose simple fold is an ASCII
// letter ("ſ" to s, the Kelvin sign to k) mapped to it; other runes kept.
func lowerFold(key []byte) []byte {
	out := make([]byte, 0, len(key))
	for i := 0; i < len(key); {
		if c := key[i]; c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(key[i:])
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < utf8.RuneSelf { // "ſ" is s, the Kelvin sign k; "İ" stays itself
				out = append(out, byte(unicode.ToLower(f)))
				r = -1
				break
			}
		}
		if r >= 0 {
			out = utf8.AppendRune(out, r)
		}
		i += n
	}
	return out
}

// parseInt reads an integer's text; 0 if it is not one or overflows.
func parseInt(raw []byte) int64 {
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func (s *scanner) array(i, depth int, ctx context) (int, bool) {
	if depth > s.maxDepth {
		return s.fail(ErrDepth, i-1)
	}
	d := s.data
	i = SkipSpace(d, i)
	if i < len(d) && d[i] == ']' {
		return i + 1, true
	}
	if ctx == inStreamOptions {
		ctx = inOther
	}
	for {
		var ok bool
		if i, ok = s.value(SkipSpace(d, i), depth, ctx); !ok {
			return i, false
		}
		i = SkipSpace(d, i)
		if i >= len(d) {
			return s.fail(ErrSyntax, i)
		}
		switch d[i] {
		case ',':
			i++
		case ']':
			return i + 1, true
		default:
			return s.fail(ErrSyntax, i)
		}
	}
}

// str reads a string whose opening quote is at i-1. It returns the offset
// after the closing quote, the decoded length and whether it has escapes.
func (s *scanner) str(i int) (end, n int, escaped, ok bool) {
	d := s.data
	for i < len(d) {
		if j := plainRun(d, i); j > i {
			n += j - i
			i = j
			continue
		}
		c := d[i]
		switch {
		case c == '"':
			return i + 1, n, escaped, true
		case c == '\\':
			escaped = true
			if i+1 >= len(d) {
				end, _ = s.fail(ErrSyntax, i)
				return end, n, escaped, false
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				n++
				i += 2
			case 'u':
				r, size, good := UnicodeEscape(d[i:])
				if !good {
					end, _ = s.fail(ErrSyntax, i)
					return end, n, escaped, false
				}
				n += utf8.RuneLen(r)
				i += size
			default:
				end, _ = s.fail(ErrSyntax, i)
				return end, n, escaped, false
			}
		case c < 0x20:
			end, _ = s.fail(ErrSyntax, i)
			return end, n, escaped, false
		case c < utf8.RuneSelf:
			n++
			i++
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size <= 1 {
				end, _ = s.fail(ErrSyntax, i)
				return end, n, escaped, false
			}
			n += size
			i += size
		}
	}
	end, _ = s.fail(ErrSyntax, i)
	return end, n, escaped, false
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// plainRun returns the end of the run of bytes from i that need no
// attention inside a string: ASCII, not a control character, quote or
// backslash. It tests eight bytes at a time.
func plainRun(d []byte, i int) int {
	for i+8 <= len(d) && !hasSpecial(binary.LittleEndian.Uint64(d[i:])) {
		i += 8
	}
	for i < len(d) {
		c := d[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			return i
		}
		i++
	}
	return i
}

// hasSpecial reports whether a word of eight bytes holds a byte that
// plainRun stops at: one with the high bit set, one below 0x20, a quote or
// a backslash (the classic SWAR tests for a byte below n and a zero byte).
func hasSpecial(w uint64) bool {
	q, b := w^(lsb*'"'), w^(lsb*'\\')
	return (w|(w-lsb*0x20)&^w|(q-lsb)&^q|(b-lsb)&^b)&msb != 0
}

// UnicodeEscape decodes the \uXXXX at s[0:], and a second one when the two
// make a surrogate pair; a lone surrogate decodes to U+FFFD, as in
// encoding/json. It returns the rune and the bytes used.
func UnicodeEscape(s []byte) (rune, int, bool) {
	r, ok := hex4(s)
	if !ok {
		return 0, 0, false
	}
	if !utf16.IsSurrogate(r) {
		return r, 6, true
	}
	if r2, ok := hex4(s[6:]); ok && len(s) >= 12 && s[6] == '\\' {
		if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
			return d, 12, true
		}
	}
	return utf8.RuneError, 6, true
}

// hex4 reads the four hex digits of "\uXXXX" at s[0:].
func hex4(s []byte) (rune, bool) {
	if len(s) < 6 || s[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number reads a number's text at i.
func (s *scanner) number(i int) (int, bool) {
	d, start := s.data, i
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return s.fail(ErrSyntax, start)
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return s.fail(ErrSyntax, i)
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return s.fail(ErrSyntax, i)
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	return i, true
}

// decodeString decodes a valid JSON string value, quotes included.
func decodeString(raw []byte) string {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner)
	}
	return string(appendUnescaped(nil, inner))
}

// appendUnescaped appends the decoded form of a valid string's inner bytes.
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, size, _ := UnicodeEscape(s[i:])
			dst = utf8.AppendRune(dst, r)
			i += size
			continue
		default: // " \ /
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}
