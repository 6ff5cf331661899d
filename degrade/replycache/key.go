package replycache

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
)

// Key returns the cache key of a request to api ("chat", "completions",
// "embeddings") within scope: the SHA-256 of scope, api and a canonical form
// of the body, so that requests that mean the same thing in one scope share
// a key, and requests of different scopes never do. The scope is the
// caller's tenant boundary — the consumer, the request's instance tags —
// and "" only where replies may be shared by everyone. ok is false if the
// body is not one JSON object (or nests deeper than 128 levels).
//
// The canonical form keeps every field of the body — model, messages,
// prompt, input, temperature, tools, user, metadata, and any field it does
// not know — with these exceptions at the top level: stream_options and
// store are left out (they do not change the model's output), and stream
// counts only when true (a streamed and a whole reply are stored apart,
// since they are replayed differently). Within the form:
//
//   - object keys are sorted at every depth; of duplicate keys the last
//     wins, as in encoding/json and Python;
//   - insignificant whitespace is ignored;
//   - strings are compared unescaped ("\u0041" is "A");
//   - numbers are compared by value when they have a fraction or exponent
//     (0.0, 0 and 0e0 are one number; 0.70 is 0.7); integers are compared
//     as written, so seeds beyond 2^53 keep every digit.
//
// Key is safe for concurrent use; it reuses buffers from a pool and
// allocates only for bodies larger than it has seen.
func Key(scope, api string, body []byte) (key [32]byte, ok bool) {
	e := encoders.Get().(*encoder)
	e.out = binary.AppendUvarint(e.out[:0], uint64(len(scope)))
	e.out = append(append(append(e.out, scope...), api...), 0)
	ok = e.document(body)
	if ok {
		key = sha256.Sum256(e.out)
	}
	if cap(e.out) <= maxPooled {
		encoders.Put(e)
	}
	return key, ok
}

// maxPooled bounds the buffers kept for reuse.
const maxPooled = 1 << 20

// maxDepth bounds nesting, so a hostile body cannot exhaust the stack.
const maxDepth = 128

var encoders = sync.Pool{New: func() any { return &encoder{out: make([]byte, 0, 4096)} }}

// ignored lists the top-level fields left out of the key.
var ignored = [...]string{"stream_options", "store"}

// The canonical form is not JSON: each value is a tag byte and a
// self-delimiting payload, which makes it unambiguous without escaping.
const (
	tagObject = 'o' // members as (string, value) pairs, then tagEnd
	tagArray  = 'a' // values, then tagEnd
	tagString = 's' // uvarint length, bytes
	tagNumber = 'n' // canonical text, then ';'
	tagTrue   = 't'
	tagFalse  = 'f'
	tagNull   = 'z'
	tagEnd    = '.'
)
