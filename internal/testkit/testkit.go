// Package testkit holds the helpers the project's tests share: polling for
// a condition with a deadline, unique names for shared registries, and free
// loopback ports. It is imported by tests only.
package testkit

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
	"time"
)

// Eventually polls cond until it holds, failing the test with what if it
// does not within the given time. It waits for an event another goroutine
// or process brings about; it is not a sleep standing in for
// synchronisation. Polls start 1 ms apart and back off to 20 ms.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// UniqueGroup returns prefix with a random suffix, a Nacos group (or any
// name in a shared registry) that no other test run uses.
func UniqueGroup(prefix string) string { return fmt.Sprintf("%s_%d", prefix, rand.Uint32()) }

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// FreePortSet returns a port p from [lo, hi) such that p plus each offset
// is free right now on every interface (some servers bind several related
// ports, such as Nacos: p, p+1000, p+1001 and p−1000). It fails the test
// after 200 tries.
func FreePortSet(t testing.TB, lo, hi int, offsets ...int) int {
	t.Helper()
	for range 200 {
		p := lo + rand.IntN(hi-lo)
		if free(p) && allFree(p, offsets) {
			return p
		}
	}
	t.Fatalf("no free port set in [%d, %d) with offsets %v", lo, hi, offsets)
	return 0
}

func allFree(p int, offsets []int) bool {
	for _, o := range offsets {
		if !free(p + o) {
			return false
		}
	}
	return true
}

// free reports whether port can be bound on all interfaces and on
// loopback.
func free(port int) bool {
	if port <= 0 || port > 65535 {
		return false
	}
	for _, host := range []string{"", "127.0.0.1"} {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return false
		}
		_ = ln.Close()
	}
	return true
}
