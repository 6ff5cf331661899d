// Package redistest runs a private Debian redis-server on a free loopback
// port for a test (scripts/redis.sh installs it when missing), with no
// persistence and a memory bound, and stops it when the test ends.
package redistest

import (
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/testkit"
)

// Server is a running redis-server.
type Server struct {
	Addr string
	bin  string
	cmd  *exec.Cmd
}

// Start starts a server and waits until it accepts connections.
func Start(t testing.TB) *Server {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	out, err := exec.Command("bash", filepath.Join(filepath.Dir(file), "..", "..", "scripts", "redis.sh")).Output()
	if err != nil {
		t.Fatalf("scripts/redis.sh: %v", err)
	}
	s := &Server{Addr: testkit.FreeAddr(t), bin: strings.TrimSpace(string(out))}
	s.start(t)
	t.Cleanup(s.stop)
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	s.cmd = exec.Command(s.bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru", "--dir", t.TempDir())
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s not up within 10s", s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Kill stops the server at once (SIGKILL), as a crash.
func (s *Server) Kill() { s.stop() }

// Restart starts the server again on the same port, empty.
func (s *Server) Restart(t testing.TB) { s.start(t) }

// Port is the server's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// PID is the server's process id, for benchmarks that read its CPU time.
func (s *Server) PID() int { return s.cmd.Process.Pid }
