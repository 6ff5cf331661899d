// Package enginetest starts real model servers that nobody in this project
// wrote, for integration tests: llama.cpp's llama-server (a real engine with
// a tiny random-weight model) and LiteLLM's proxy (a uvicorn-based
// OpenAI-compatible server answering mock_response models).
//
// Each server runs on a free loopback port in its own process group and is
// killed, with everything it started, when the test ends, pass or fail:
//
//	srv := enginetest.Llama(t, enginetest.LlamaOptions{})          // chat, completions
//	emb := enginetest.Llama(t, enginetest.LlamaOptions{Embeddings: true})
//	lite := enginetest.LiteLLM(t, "mock-a", "mock-b")
//	resp, _ := http.Get(srv.URL + "/v1/models")
//
// Parallel starts several at once (LiteLLM takes a while); Server.Signal
// freezes and thaws one (SIGSTOP, SIGCONT) for fault tests.
//
// The binaries come from the project's scripts, which build or reuse them
// once per machine: scripts/llama-build.sh (llama-server and the model,
// cached under ~/.cache/modelgate/llama; ~10 min to build the first time)
// and scripts/litellm-env.sh (a venv under .cache/litellm). `make test` runs
// both before the tests, so a test only pays for starting the servers (about
// 2 s for llama-server, 5–20 s for LiteLLM on a busy machine).
package enginetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/testkit"
)

// Server is one running server process.
type Server struct {
	Name string // what the test called it, for logs
	Addr string // "127.0.0.1:PORT"
	URL  string // "http://127.0.0.1:PORT"
	Port int

	cmd  *exec.Cmd
	log  *tailBuffer
	done chan struct{} // closed when the process has exited
	once sync.Once
}

// Pid is the server's process id (also its process group id).
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Signal sends sig to the server's whole process group (SIGSTOP freezes a
// host, SIGCONT thaws it).
func (s *Server) Signal(sig syscall.Signal) error {
	return syscall.Kill(-s.cmd.Process.Pid, sig)
}

// Stop kills the server's process group and waits for it to exit. It is
// idempotent; the test's cleanup calls it too.
func (s *Server) Stop() {
	s.once.Do(func() {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGCONT)
		<-s.done
	})
}

// Exited reports whether the process has exited.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Log is the tail of the server's stdout and stderr.
func (s *Server) Log() string { return s.log.String() }

// LlamaOptions configure one llama-server.
type LlamaOptions struct {
	// Embeddings serves /v1/embeddings (--embeddings --pooling mean) with
	// the embedding model instead of chat and completions.
	Embeddings bool
	// Alias is the model name the server reports in /v1/models and replies
	// (--alias); default "tiny" or "tiny-embed".
	Alias string
	// Parallel is the number of slots (-np; default 4). Context is the total
	// context shared by the slots (-c; default 16384). Threads is -t
	// (default 2).
	Parallel, Context, Threads int
	// Predict caps the tokens generated for a request that sets no
	// max_tokens (-n; default 64: a random-weight model seldom stops by
	// itself).
	Predict int
	// Args are appended to the command line.
	Args []string
}

// Build holds the paths printed by scripts/llama-build.sh.
type Build struct {
	Server     string // the llama-server binary
	Model      string // the chat/completions GGUF
	EmbedModel string // the embedding GGUF
}

var llamaBuild = &onceScript[Build]{name: "llama-build.sh", timeout: 60 * time.Minute, parse: func(out string) (Build, error) {
	f := strings.Fields(lastLine(out))
	if len(f) != 3 {
		return Build{}, fmt.Errorf("scripts/llama-build.sh printed %q, want SERVER MODEL EMBED_MODEL", out)
	}
	return Build{Server: f[0], Model: f[1], EmbedModel: f[2]}, nil
}}

// LlamaBuild builds or reuses llama-server and the tiny models (once per
// test binary) and returns their paths. It fails the test if it cannot.
func LlamaBuild(t testing.TB) Build {
	t.Helper()
	return llamaBuild.get(t)
}

// Llama starts a llama-server with the tiny model and waits until its
// /health answers 200.
func Llama(t testing.TB, o LlamaOptions) *Server {
	t.Helper()
	b := LlamaBuild(t)
	model, alias := b.Model, "tiny"
	if o.Embeddings {
		model, alias = b.EmbedModel, "tiny-embed"
	}
	if o.Alias != "" {
		alias = o.Alias
	}
	def := func(v, d int) string {
		if v > 0 {
			return strconv.Itoa(v)
		}
		return strconv.Itoa(d)
	}
	return start(t, "llama-server "+alias, "/health", 60*time.Second, func(port int) *exec.Cmd {
		args := []string{
			"-m", model, "--alias", alias, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
			"-c", def(o.Context, 16384), "-np", def(o.Parallel, 4), "-t", def(o.Threads, 2), "-n", def(o.Predict, 64),
			"--metrics", "--slots", "--no-webui",
		}
		if o.Embeddings {
			args = append(args, "--embeddings", "--pooling", "mean")
		} else {
			args = append(args, "--cache-reuse", "256")
		}
		args = append(args, o.Args...)
		return exec.Command(b.Server, args...)
	})
}

// Llamas starts n llama-servers with the same options side by side.
func Llamas(t testing.TB, n int, o LlamaOptions) []*Server {
	t.Helper()
	LlamaBuild(t)
	out := make([]*Server, n)
	fns := make([]func(testing.TB), n)
	for i := range fns {
		fns[i] = func(t testing.TB) { out[i] = Llama(t, o) }
	}
	Parallel(t, fns...)
	return out
}

// Parallel runs each fn in its own goroutine with a testing.TB whose Fatal
// stops only that fn, waits for all, and then fails t if any failed: for
// starting servers side by side (LiteLLM takes tens of seconds to start).
func Parallel(t testing.TB, fns ...func(t testing.TB)) {
	t.Helper()
	msgs := make([]string, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() {
			ft := &fatalCatcher{TB: t}
			defer func() { msgs[i] = ft.msg }()
			defer ft.recover()
			fn(ft)
		})
	}
	wg.Wait()
	for _, m := range msgs {
		if m != "" {
			t.Fatal(m)
		}
	}
}

var liteBin = &onceScript[string]{name: "litellm-env.sh", timeout: 20 * time.Minute,
	parse: func(out string) (string, error) { return lastLine(out), nil }}

// LiteLLMBinary builds or reuses the LiteLLM venv (once per test binary)
// and returns its litellm command.
func LiteLLMBinary(t testing.TB) string {
	t.Helper()
	return liteBin.get(t)
}

// LiteLLMReply is the content every LiteLLM mock model answers.
const LiteLLMReply = "Hello from a LiteLLM mock model."

// LiteLLM starts LiteLLM's proxy (one uvicorn worker, no master key)
// serving the given model names as mock_response models, and waits until
// it answers. Each model answers LiteLLMReply, streamed or not, with usage.
func LiteLLM(t testing.TB, models ...string) *Server {
	t.Helper()
	if len(models) == 0 {
		models = []string{"mock"}
	}
	bin := LiteLLMBinary(t)
	dir := t.TempDir()
	var cfg strings.Builder
	cfg.WriteString("model_list:\n")
	for _, m := range models {
		fmt.Fprintf(&cfg, "  - model_name: %q\n    litellm_params:\n      model: %q\n      mock_response: %q\n",
			m, "openai/"+m, LiteLLMReply)
	}
	cfg.WriteString("litellm_settings:\n  telemetry: false\n")
	path := filepath.Join(dir, "litellm.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return start(t, "litellm", "/health/liveliness", 180*time.Second, func(port int) *exec.Cmd {
		cmd := exec.Command(bin, "--config", path, "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--num_workers", "1")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(),
			"LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY=true",
			"LITELLM_LOCAL_MODEL_COST_MAP=True", // no fetch of the cost map from the internet
			"LITELLM_TELEMETRY=False",
			"LITELLM_LOG=ERROR",
			"HOME="+dir,
		)
		return cmd
	})
}

// start runs the command newCmd builds for a free port until readyPath
// answers 200, retrying on another port if the process exits early (the
// port may have been taken between picking and binding).
func start(t testing.TB, name, readyPath string, timeout time.Duration, newCmd func(port int) *exec.Cmd) *Server {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := testkit.FreePort(t)
		s := &Server{Name: name, Port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			cmd: newCmd(port), log: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
		s.URL = "http://" + s.Addr
		s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
		// Its own process group, so Stop kills what it forks too; and killed
		// with the test binary (Pdeathsig fires when the forking thread
		// exits, which Go's runtime does not do to unlocked threads).
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := s.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		t.Cleanup(s.Stop)
		if err := waitReady(s, readyPath, timeout); err != nil {
			s.Stop()
			lastErr = err
			if s.Exited() && strings.Contains(s.Log(), "bind") {
				continue // port taken: try another
			}
			break
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s (%s) log tail:\n%s", name, s.Addr, s.Log())
			}
		})
		return s
	}
	t.Fatalf("%s: %v", name, lastErr)
	return nil
}

func waitReady(s *Server, path string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		if s.Exited() {
			return fmt.Errorf("exited before it was ready (%s):\n%s", s.cmd.ProcessState, s.Log())
		}
		resp, err := client.Get(s.URL + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond) // polling a process we cannot be notified by
	}
	return fmt.Errorf("not ready after %s (last: %s):\n%s", timeout, last, s.Log())
}

// RepoRoot is the module's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// onceScript runs one of the project's scripts once per test binary and
// keeps what parse made of its stdout, or the error.
type onceScript[T any] struct {
	name    string
	timeout time.Duration
	parse   func(stdout string) (T, error)

	once sync.Once
	val  T
	err  error
}

func (o *onceScript[T]) get(t testing.TB) T {
	t.Helper()
	o.once.Do(func() {
		out, err := script(o.timeout, o.name)
		if err == nil {
			o.val, err = o.parse(out)
		}
		o.err = err
	})
	if o.err != nil {
		t.Fatalf("scripts/%s: %v", o.name, o.err)
	}
	return o.val
}

func script(timeout time.Duration, name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(RepoRoot(), "scripts", name))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/%s: %w\n%s", name, err, stderr.String())
	}
	if strings.TrimSpace(string(out)) == "" {
		return "", errors.New("scripts/" + name + " printed nothing\n" + stderr.String())
	}
	return string(out), nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	if over := len(b.b) - b.max; over > 0 {
		b.b = append(b.b[:0], b.b[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}

// fatalCatcher lets Parallel start servers from several goroutines, where
// Fatal must not be called: it is turned into a message.
type fatalCatcher struct {
	testing.TB
	msg string
}

type fatalPanic struct{}

func (f *fatalCatcher) Fatal(args ...any) { f.msg = fmt.Sprint(args...); panic(fatalPanic{}) }
func (f *fatalCatcher) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(fatalPanic{})
}
func (f *fatalCatcher) FailNow() { f.msg = "failed"; panic(fatalPanic{}) }
func (f *fatalCatcher) recover() {
	if r := recover(); r != nil {
		if _, ok := r.(fatalPanic); !ok {
			panic(r)
		}
	}
}
