package testkit

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// Buffer is an io.Writer that collects what other goroutines or processes
// write (a logger, a command's output) for a test to read or wait for. It
// is safe for concurrent use; the zero value is ready.
type Buffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{} // closed by the next Write; made by a waiter
}

// Write appends p and wakes the waiters.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wrote != nil {
		close(b.wrote)
		b.wrote = nil
	}
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Lines returns the complete lines written so far, without their newlines.
func (b *Buffer) Lines() []string {
	s := b.String()
	end := strings.LastIndexByte(s, '\n')
	if end < 0 {
		return nil
	}
	return strings.Split(s[:end], "\n")
}

// Wait waits, woken by each write, until cond holds for what was written,
// and returns that text. It fails the test with what and the text if cond
// does not hold within the given time.
func (b *Buffer) Wait(t testing.TB, within time.Duration, what string, cond func(string) bool) string {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		s := b.b.String()
		if cond(s) {
			b.mu.Unlock()
			return s
		}
		if b.wrote == nil {
			b.wrote = make(chan struct{})
		}
		wrote := b.wrote
		b.mu.Unlock()
		select {
		case <-wrote:
		case <-deadline.C:
			t.Fatalf("%s: not within %v; written:\n%s", what, within, s)
		}
	}
}

// WaitFor waits until the output holds sub.
func (b *Buffer) WaitFor(t testing.TB, within time.Duration, sub string) {
	t.Helper()
	b.Wait(t, within, "output showing "+sub, func(s string) bool { return strings.Contains(s, sub) })
}

// WaitLines waits until n complete lines have been written and returns
// them all.
func (b *Buffer) WaitLines(t testing.TB, within time.Duration, n int) []string {
	t.Helper()
	b.Wait(t, within, "lines written", func(s string) bool { return strings.Count(s, "\n") >= n })
	return b.Lines()
}

// WaitWord waits until the output holds prefix followed by a word, and
// returns that word (an address a process prints when it listens).
func (b *Buffer) WaitWord(t testing.TB, within time.Duration, prefix string) string {
	t.Helper()
	var word string
	b.Wait(t, within, "output showing "+prefix, func(s string) bool {
		_, after, ok := strings.Cut(s, prefix)
		after = strings.TrimLeft(after, " \t")
		if end := strings.IndexAny(after, " \t\r\n"); ok && end > 0 {
			word = after[:end]
			return true
		}
		return false
	})
	return word
}
