// Package sse reads server-sent events incrementally, one event at a time,
// without holding more than the current event in memory.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ErrEventTooLarge is returned when one event exceeds the reader's limit.
var ErrEventTooLarge = errors.New("sse: event too large")

// Reader splits a byte stream into events: runs of lines ended by a blank
// line. It is not safe for concurrent use.
type Reader struct {
	br    *bufio.Reader
	raw   []byte
	data  []byte
	limit int
}

// NewReader returns a Reader over r. Events larger than limit bytes (default
// 1 MiB) fail with ErrEventTooLarge.
func NewReader(r io.Reader, limit int) *Reader {
	if limit <= 0 {
		limit = 1 << 20
	}
	return &Reader{br: bufio.NewReaderSize(r, 4096), limit: limit}
}

// Next reads the next event. Raw is the event as received, blank line
// included; Data is the joined value of its "data:" lines. Both are valid
// until the next call. At the end of the stream Next returns io.EOF, or
// io.ErrUnexpectedEOF if the stream ended inside an event.
func (r *Reader) Next() (raw, data []byte, err error) {
	r.raw, r.data = r.raw[:0], r.data[:0]
	dataLines := 0
	for {
		line, err := r.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			err = nil // a long line: keep reading it
		}
		if len(r.raw)+len(line) > r.limit {
			return nil, nil, ErrEventTooLarge
		}
		r.raw = append(r.raw, line...)
		if err != nil {
			if err == io.EOF && len(bytes.TrimSpace(r.raw)) == 0 {
				return nil, nil, io.EOF
			}
			if err == io.EOF {
				return nil, nil, io.ErrUnexpectedEOF
			}
			return nil, nil, err
		}
		if line[len(line)-1] != '\n' {
			continue // rest of a long line follows
		}
		if !isBlank(line) {
			continue
		}
		if len(bytes.TrimSpace(r.raw)) == 0 {
			r.raw = r.raw[:0] // stray blank lines between events
			continue
		}
		break
	}
	for line := range bytes.Lines(r.raw) {
		v, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		v = bytes.TrimPrefix(v, []byte(" "))
		v = bytes.TrimRight(v, "\r\n")
		if dataLines > 0 {
			r.data = append(r.data, '\n')
		}
		r.data = append(r.data, v...)
		dataLines++
	}
	return r.raw, r.data, nil
}

func isBlank(line []byte) bool {
	return len(line) == 1 || (len(line) == 2 && line[0] == '\r')
}

// IsDone reports whether data is the OpenAI end-of-stream marker.
func IsDone(data []byte) bool { return string(data) == "[DONE]" }
