// Package bench holds the short forms of `make bench` and `make chaos` that
// run in `make test`, so that CI keeps them working. They assert that the
// runs complete and that their figures are sane, not performance targets:
// CI machines are busy.
package bench

import (
	"os"
	"sync"
	"testing"

	"github.com/modelgate/modelgate/bench/harness"
)

var (
	buildOnce sync.Once
	built     harness.Bins
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// bins builds modelgate, the mock and the floor once for the package.
func bins(t *testing.T) *harness.Bins {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "modelgate-bench-test-"); buildErr != nil {
			return
		}
		built, buildErr = harness.Build(buildDir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return &built
}

// logWriter sends progress lines to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p[:len(p)-min(len(p), 1)]))
	return len(p), nil
}
