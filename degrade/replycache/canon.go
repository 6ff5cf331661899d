package replycache

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/modelgate/modelgate/internal/reqjson"
)

// encoder writes the canonical form of a JSON document to out.
type encoder struct {
	out     []byte
	members []member // a stack: each open object's members, in order
	scratch []byte   // unescaped strings
}

// member locates one object member in out: its encoded key starts at start,
// its key bytes are out[key:val] and its encoded value out[val:end].
type member struct{ start, key, val, end int }

func (e *encoder) document(data []byte) bool {
	i := reqjson.SkipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i, ok := e.value(data, i, 0)
	return ok && reqjson.SkipSpace(data, i) == len(data)
}

// value encodes the value at data[i:] and returns the index after it.
func (e *encoder) value(data []byte, i, depth int) (int, bool) {
	if i >= len(data) {
		return i, false
	}
	switch c := data[i]; {
	case c == '{':
		return e.object(data, i+1, depth+1)
	case c == '[':
		return e.array(data, i+1, depth+1)
	case c == '"':
		return e.str(data, i+1)
	case c == '-' || c >= '0' && c <= '9':
		return e.number(data, i)
	}
	for _, lit := range [...]struct {
		text string
		tag  byte
	}{{"true", tagTrue}, {"false", tagFalse}, {"null", tagNull}} {
		if bytes.HasPrefix(data[i:], []byte(lit.text)) {
			e.out = append(e.out, lit.tag)
			return i + len(lit.text), true
		}
	}
	return i, false
}

// object encodes the members after '{' in key order and returns the index
// after '}'.
func (e *encoder) object(data []byte, i, depth int) (int, bool) {
	if depth > maxDepth {
		return i, false
	}
	region, base := len(e.out), len(e.members)
	defer func() { e.members = e.members[:base] }()
	i = reqjson.SkipSpace(data, i)
	if i < len(data) && data[i] == '}' {
		e.out = append(e.out, tagObject, tagEnd)
		return i + 1, true
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return i, false
		}
		m := member{start: len(e.out)}
		var ok bool
		if i, ok = e.str(data, i+1); !ok {
			return i, false
		}
		_, n := binary.Uvarint(e.out[m.start+1:])
		m.key = m.start + 1 + n
		if i = reqjson.SkipSpace(data, i); i >= len(data) || data[i] != ':' {
			return i, false
		}
		m.val = len(e.out)
		if i, ok = e.value(data, reqjson.SkipSpace(data, i+1), depth); !ok {
			return i, false
		}
		m.end = len(e.out)
		e.members = append(e.members, m)
		if i = reqjson.SkipSpace(data, i); i >= len(data) {
			return i, false
		}
		if data[i] == '}' {
			break
		}
		if data[i] != ',' {
			return i, false
		}
		i = reqjson.SkipSpace(data, i+1)
	}
	e.emitSorted(region, e.members[base:], depth == 1)
	return i + 1, true
}

// dropTopLevel reports whether a top-level member stays out of the key.
func (e *encoder) dropTopLevel(m member) bool {
	k := e.out[m.key:m.val]
	if string(k) == "stream" {
		return m.end-m.val != 1 || e.out[m.val] != tagTrue
	}
	for _, name := range ignored {
		if string(k) == name {
			return true
		}
	}
	return false
}

// emitSorted replaces out[region:] (the members ms, in input order) with
// the object's canonical form: members sorted by key, the last of equal
// keys kept, and for the top-level object the fields of no consequence
// left out.
func (e *encoder) emitSorted(region int, ms []member, top bool) {
	key := func(m member) []byte { return e.out[m.key:m.val] }
	slices.SortStableFunc(ms, func(a, b member) int { return bytes.Compare(key(a), key(b)) })
	tmp := len(e.out)
	e.out = append(e.out, tagObject)
	for j, m := range ms {
		if j+1 < len(ms) && bytes.Equal(key(m), key(ms[j+1])) {
			continue // a later duplicate wins
		}
		if top && e.dropTopLevel(m) {
			continue
		}
		e.out = append(e.out, e.out[m.start:m.end]...)
	}
	e.out = append(e.out, tagEnd)
	n := copy(e.out[region:], e.out[tmp:])
	e.out = e.out[:region+n]
}

// array encodes the values after '[' and returns the index after ']'.
func (e *encoder) array(data []byte, i, depth int) (int, bool) {
	if depth > maxDepth {
		return i, false
	}
	e.out = append(e.out, tagArray)
	i = reqjson.SkipSpace(data, i)
	if i < len(data) && data[i] == ']' {
		e.out = append(e.out, tagEnd)
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = e.value(data, i, depth); !ok {
			return i, false
		}
		if i = reqjson.SkipSpace(data, i); i >= len(data) {
			return i, false
		}
		if data[i] == ']' {
			e.out = append(e.out, tagEnd)
			return i + 1, true
		}
		if data[i] != ',' {
			return i, false
		}
		i = reqjson.SkipSpace(data, i+1)
	}
}

// str encodes the string whose body starts at data[i] (after the opening
// quote), unescaped, and returns the index after the closing quote.
func (e *encoder) str(data []byte, i int) (int, bool) {
	q := bytes.IndexByte(data[i:], '"')
	if q < 0 {
		return len(data), false
	}
	b := bytes.IndexByte(data[i:i+q], '\\')
	if b < 0 { // no escapes: the common case
		e.putString(data[i : i+q])
		return i + q + 1, true
	}
	j := i + b
	e.scratch = append(e.scratch[:0], data[i:j]...)
	for j < len(data) {
		c := data[j]
		switch {
		case c == '"':
			e.putString(e.scratch)
			return j + 1, true
		case c != '\\':
			e.scratch = append(e.scratch, c)
			j++
			continue
		}
		if j+1 >= len(data) {
			return j, false
		}
		switch esc := data[j+1]; esc {
		case '"', '\\', '/':
			e.scratch = append(e.scratch, esc)
		case 'b':
			e.scratch = append(e.scratch, '\b')
		case 'f':
			e.scratch = append(e.scratch, '\f')
		case 'n':
			e.scratch = append(e.scratch, '\n')
		case 'r':
			e.scratch = append(e.scratch, '\r')
		case 't':
			e.scratch = append(e.scratch, '\t')
		case 'u':
			r, n, ok := reqjson.UnicodeEscape(data[j:])
			if !ok {
				return j, false
			}
			e.scratch = utf8.AppendRune(e.scratch, r)
			j += n
			continue
		default:
			return j, false
		}
		j += 2
	}
	return j, false
}

func (e *encoder) putString(s []byte) {
	e.out = append(e.out, tagString)
	e.out = binary.AppendUvarint(e.out, uint64(len(s)))
	e.out = append(e.out, s...)
}

// number encodes the number at data[i:] and returns the index after it.
func (e *encoder) number(data []byte, i int) (int, bool) {
	j, frac := i, false
	for ; j < len(data); j++ {
		c := data[j]
		if c == '.' || c == 'e' || c == 'E' || c == '+' {
			frac = true
		} else if c != '-' && (c < '0' || c > '9') {
			break
		}
	}
	text := data[i:j]
	e.out = append(e.out, tagNumber)
	switch {
	case !frac:
		digits := text
		if digits[0] == '-' {
			digits = digits[1:]
		}
		if len(digits) == 0 || bytes.IndexByte(digits, '-') >= 0 {
			return j, false
		}
		if string(text) == "-0" {
			text = digits
		}
		e.out = append(e.out, text...)
	default:
		f, err := strconv.ParseFloat(string(text), 64)
		switch {
		case err != nil && !math.IsInf(f, 0):
			return j, false
		case err != nil: // out of range: compare as written
			e.out = append(e.out, text...)
		case f == math.Trunc(f) && math.Abs(f) < 1<<53:
			e.out = strconv.AppendInt(e.out, int64(f), 10)
		default:
			e.out = strconv.AppendFloat(e.out, f, 'g', -1, 64)
		}
	}
	e.out = append(e.out, ';')
	return j, true
}
