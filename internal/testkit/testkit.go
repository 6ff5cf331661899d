// Package testkit holds the helpers the project's tests share: polling for
// a condition with a deadline, a concurrency-safe output buffer to read and
// wait on, unique names for shared registries, and free loopback ports. It
// is imported by tests and test servers only.
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
	if !Await(within, 20*time.Millisecond, cond) {
		t.Fatalf("%s: not within %v", what, within)
	}
}

// Await polls cond until it holds or the time is up, and reports whether
// it held: the test then says what it saw. Polls start 1 ms apart and back
// off to every (the pace for a condition costly to check, such as a query
// to another server, or one that drives the state awaited).
func Await(within, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	pause := min(time.Millisecond, every)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
		pause = min(2*pause, every)
	}
	return true
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

// FreeAddr returns "127.0.0.1:PORT" of a port that was free a moment ago:
// for a server the test starts there, or as the address of one that is down.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
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
