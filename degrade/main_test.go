package degrade_test

import (
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/modelgate/modelgate/internal/leaktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// t0 is the start of every test's fake time.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// waitFor yields until cond holds, failing the test after 10 s. It waits
// for another goroutine to reach a state (queued, timer armed); it is not a
// sleep standing in for synchronisation.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	limit := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(limit) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}
