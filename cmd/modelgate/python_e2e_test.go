package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/nacostest"
	"github.com/modelgate/modelgate/internal/testkit"
	"github.com/modelgate/modelgate/router"
)

var (
	pyEnvOnce   sync.Once
	pyEnvPython string
	pyEnvErr    error
)

// repoRoot is the module root, found from this file's path.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// pythonEnv returns the interpreter of the venv with the pinned official
// OpenAI Python SDK, built or refreshed by scripts/python-env.sh once per
// test binary (quick when the venv is up to date).
func pythonEnv(t *testing.T) string {
	t.Helper()
	pyEnvOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(repoRoot(), "scripts", "python-env.sh"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.Output()
		if err != nil {
			pyEnvErr = fmt.Errorf("scripts/python-env.sh: %w\n%s", err, stderr.String())
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		pyEnvPython = lines[len(lines)-1]
		if pyEnvPython == "" {
			pyEnvErr = errors.New("scripts/python-env.sh printed no interpreter path\n" + stderr.String())
		}
	})
	if pyEnvErr != nil {
		t.Fatalf("no Python venv for the OpenAI SDK: %v", pyEnvErr)
	}
	return pyEnvPython
}

// runPythonCheck runs a script of tests/python with the SDK's venv, logs
// its output and decodes the JSON object on its last line into summary.
func runPythonCheck(t *testing.T, timeout time.Duration, summary any, script string, args ...string) {
	t.Helper()
	python := pythonEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, append([]string{filepath.Join(repoRoot(), "tests", "python", script)}, args...)...)
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost", "PYTHONDONTWRITEBYTECODE=1")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	t.Logf("OpenAI Python SDK:\n%s", out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), summary); err != nil {
		t.Fatalf("%s summary: %v", script, err)
	}
}

// TestPythonSDKAgainstRealNacos drives modelgate with the official OpenAI
// Python SDK (tests/python/client_check.py): chat, streaming with and
// without usage, legacy completions, embeddings, the model list and a 404,
// against mock model servers registered in a real Nacos.
func TestPythonSDKAgainstRealNacos(t *testing.T) {
	python := pythonEnv(t)
	addr := nacostest.Addr(t)
	group := testkit.UniqueGroup("E2EPY")
	chatKey := discovery.ServiceKey(group, "qwen")
	embedKey := discovery.ServiceKey(group, "bge")

	const chunks = 8
	m1 := startMock(t, "m1", mockllm.Config{StreamChunks: chunks})
	m2 := startMock(t, "m2", mockllm.Config{StreamChunks: chunks})
	emb := startMock(t, "emb", mockllm.Config{})
	nacostest.Register(t, addr, group, "qwen", "127.0.0.1", port(m1.Addr()), 1, map[string]string{"version": "v1"})
	nacostest.Register(t, addr, group, "qwen", "127.0.0.1", port(m2.Addr()), 1, map[string]string{"version": "v1"})
	nacostest.Register(t, addr, group, "bge", "127.0.0.1", port(emb.Addr()), 1, nil)

	cfg := nacosConfig(addr, group, "qwen", "keep")
	cfg.Router.Routes = append(cfg.Router.Routes, router.Route{Model: "embed", Service: "bge"})
	d := startDaemon(t, cfg)
	d.waitPool(t, chatKey, 10*time.Second, func(l []*discovery.Instance) bool { return len(l) == 2 })
	d.waitPool(t, embedKey, 10*time.Second, func(l []*discovery.Instance) bool { return len(l) == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join(repoRoot(), "tests", "python", "client_check.py"),
		"--base-url", "http://"+d.api+"/v1",
		"--chat-model", "chat",
		"--embed-model", "embed",
		"--embed-dim", strconv.Itoa(mockllm.EmbeddingDim),
		"--stream-chunks", strconv.Itoa(chunks),
	)
	// Loopback only: no proxy from the environment may intercept it.
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
		"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("OpenAI Python SDK checks failed (%v):\n%s", err, out)
	}
	t.Logf("OpenAI Python SDK checks:\n%s", out)

	if m1.Requests()+m2.Requests() == 0 || emb.Requests() == 0 {
		t.Fatalf("the checks did not reach the Nacos instances: chat %d+%d, embeddings %d",
			m1.Requests(), m2.Requests(), emb.Requests())
	}
}
