package sse

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		data    []string
		lastErr error
	}{
		{"two events", "data: a\n\ndata: b\n\n", []string{"a", "b"}, io.EOF},
		{"crlf and comments", ": ping\r\n\r\ndata: x\r\n\r\n", []string{"", "x"}, io.EOF},
		{"multi-line data", "event: m\ndata: 1\ndata: 2\n\n", []string{"1\n2"}, io.EOF},
		{"stray blank lines", "\n\ndata: a\n\n\n", []string{"a"}, io.EOF},
		{"cut mid-event", "data: a\n\ndata: b", []string{"a"}, io.ErrUnexpectedEOF},
		{"no space after colon", "data:[DONE]\n\n", []string{"[DONE]"}, io.EOF},
		{"long line", "data: " + strings.Repeat("x", 10000) + "\n\n", []string{strings.Repeat("x", 10000)}, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.in), 0)
			var got []string
			var err error
			var raws strings.Builder
			for {
				var raw, data []byte
				raw, data, err = r.Next()
				if err != nil {
					break
				}
				raws.Write(raw)
				got = append(got, string(data))
			}
			if !errors.Is(err, tt.lastErr) {
				t.Fatalf("err = %v, want %v", err, tt.lastErr)
			}
			if strings.Join(got, "|") != strings.Join(tt.data, "|") {
				t.Fatalf("data = %q, want %q", got, tt.data)
			}
			want := tt.in // events pass through byte for byte, but for blank lines between them
			switch tt.name {
			case "stray blank lines":
				want = "data: a\n\n"
			case "cut mid-event":
				want = "data: a\n\n"
			}
			if raws.String() != want {
				t.Errorf("raw = %q, want %q", raws.String(), want)
			}
		})
	}
}

func TestEventTooLarge(t *testing.T) {
	r := NewReader(strings.NewReader("data: "+strings.Repeat("x", 100)+"\n\n"), 50)
	if _, _, err := r.Next(); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte("data: a\n\ndata: [DONE]\n\n"))
	f.Add([]byte(": c\r\n\r\nevent: e\ndata: 1\ndata: 2\n\n"))
	f.Add([]byte("data: cut"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(strings.NewReader(string(in)), 1<<16)
		total := 0
		for {
			raw, data, err := r.Next()
			if err != nil {
				break
			}
			if len(data) > len(raw) {
				t.Fatalf("data longer than the event: %q / %q", data, raw)
			}
			total += len(raw)
		}
		if total > len(in) {
			t.Fatalf("read %d bytes from %d", total, len(in))
		}
	})
}
