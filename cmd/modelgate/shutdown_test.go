package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/mockllm"
)

// buildBinary builds the modelgate command into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "modelgate")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestSIGTERMDrainsStreams: SIGTERM during 20 active streams → all 20
// complete, then the process exits 0.
func TestSIGTERMDrainsStreams(t *testing.T) {
	bin := buildBinary(t)
	m := startMock(t, "m", mockllm.Config{StreamChunks: 20, ReplyWords: 20, ChunkGap: 50 * time.Millisecond})
	dir := t.TempDir()
	write(t, filepath.Join(dir, "pool.yaml"), "instances:\n  - {service: qwen, addr: '"+m.Addr()+"'}\n")
	write(t, filepath.Join(dir, "modelgate.yaml"), "discovery: {static: "+filepath.Join(dir, "pool.yaml")+"}\nroutes:\n  - {model: chat, service: qwen}\naccess_log: {disabled: true}\n")

	cmd := exec.Command(bin, "-config", filepath.Join(dir, "modelgate.yaml"), "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	// The daemon logs its listeners once it serves.
	api := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Message, API string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == "modelgate serving" {
				api <- line.API
			}
		}
		exited <- cmd.Wait()
	}()
	var addr string
	select {
	case addr = <-api:
	case <-time.After(20 * time.Second):
		t.Fatal("modelgate did not start serving")
	}

	c := (&testDaemon{api: addr}).client()
	started := make(chan struct{})
	done := make(chan []error, 1)
	go func() { done <- streamAll(c, "chat", 20, started) }()
	waitClosed(t, started, 10*time.Second, "20 streams started")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i, err := range <-done {
		if err != nil {
			t.Errorf("stream %d: %v", i, err)
		}
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("modelgate exited with %v, want 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("modelgate did not exit after its streams ended")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	_ = os.Remove(bin)
}
