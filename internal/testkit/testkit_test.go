package testkit

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"
)

// TestBufferWaitsForWrites: a waiter is woken by writes from another
// goroutine, sees only complete lines, and gets the word after a prefix
// once the word is whole.
func TestBufferWaitsForWrites(t *testing.T) {
	var b Buffer
	go func() {
		for _, p := range []string{"one\nAPI   http://127.0.0.1:", "4242/ up\n", "partial"} {
			time.Sleep(time.Millisecond) // the writer's own pace
			fmt.Fprint(&b, p)
		}
	}()
	if w := b.WaitWord(t, 5*time.Second, "API   http://"); w != "127.0.0.1:4242/" {
		t.Fatalf("word %q", w)
	}
	b.WaitFor(t, 5*time.Second, "partial")
	if got := b.Lines(); !slices.Equal(got, []string{"one", "API   http://127.0.0.1:4242/ up"}) {
		t.Fatalf("lines %q", got)
	}
	if got := b.WaitLines(t, time.Second, 2); len(got) != 2 {
		t.Fatalf("lines %q", got)
	}
	var empty Buffer
	if got := empty.Lines(); got != nil {
		t.Fatalf("empty buffer lines %q", got)
	}
}

func TestAwait(t *testing.T) {
	n := 0
	if !Await(time.Second, time.Millisecond, func() bool { n++; return n == 5 }) || n != 5 {
		t.Fatalf("Await stopped after %d polls", n)
	}
	began := time.Now()
	if Await(30*time.Millisecond, 5*time.Millisecond, func() bool { return false }) {
		t.Fatal("Await reported a condition that never held")
	}
	if d := time.Since(began); d < 30*time.Millisecond {
		t.Fatalf("Await gave up after %v, before its deadline", d)
	}
}

func TestFreeAddrIsFree(t *testing.T) {
	addr := FreeAddr(t)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("FreeAddr %s cannot be bound: %v", addr, err)
	}
	_ = ln.Close()
	if a, b := UniqueGroup("G"), UniqueGroup("G"); a == b || a[:2] != "G_" {
		t.Fatalf("UniqueGroup gave %q and %q", a, b)
	}
}
