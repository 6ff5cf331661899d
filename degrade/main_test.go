package degrade_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/modelgate/modelgate/internal/leaktest"
	"github.com/modelgate/modelgate/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// t0 is the start of every test's fake time.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// waitFor waits until another goroutine has reached a state (queued, timer
// armed), failing the test after 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, what, cond)
}
