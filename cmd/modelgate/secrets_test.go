package main

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/testkit"
)

// TestSecretsNeverLeak runs the daemon binary with a consumer key, an
// upstream credential and an admin token, sends keys in every malformed way
// it can, reads every admin page, and greps all of it — stderr, the access
// log on stdout, admin pages, /metrics, every reply — for the secrets. It
// also measures the daemon's CPU for an 8 MiB body of '[' (< 50 ms).
func TestSecretsNeverLeak(t *testing.T) {
	const (
		consumerKey = "sk-consumer-4f9a1c3d"
		strayKey    = "sk-stray-77e0b2aa"
		upstreamKey = "sk-upstream-c0ffee11"
		adminToken  = "adm-token-5e5e5e5e"
	)
	secrets := []string{consumerKey, strayKey, upstreamKey, adminToken}
	bin := buildBinary(t)
	m := startMock(t, "chat", mockllm.Config{})
	dir := t.TempDir()
	write(t, filepath.Join(dir, "pool.yaml"), "instances:\n  - {service: chat, addr: '"+m.Addr()+"', metadata: {cred_ref: up}}\n")
	write(t, filepath.Join(dir, "modelgate.yaml"), `log_level: debug
admin: {listen: "127.0.0.1:0", token_env: MG_TEST_ADMIN_TOKEN}
discovery: {static: `+filepath.Join(dir, "pool.yaml")+`}
routes:
  - {model: chat}
passthrough: ["/v1/files"]
consumers:
  - {name: team-a, key_sha256: "`+sha256Hex(consumerKey)+`", models: [chat]}
credentials:
  up: {env: MG_TEST_UPSTREAM_KEY}
`)
	cmd := exec.Command(bin, "-config", filepath.Join(dir, "modelgate.yaml"), "-listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "MG_TEST_UPSTREAM_KEY="+upstreamKey, "MG_TEST_ADMIN_TOKEN="+adminToken)
	var stdout, stderr testkit.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	stderr.WaitFor(t, 10*time.Second, `"message":"modelgate serving"`)
	var serving struct{ API, Admin string }
	for line := range strings.Lines(stderr.String()) {
		if strings.Contains(line, `"modelgate serving"`) {
			_ = json.Unmarshal([]byte(line), &serving)
		}
	}
	if serving.API == "" {
		t.Fatalf("no listener line: %s", stderr.String())
	}
	// Serving is not ready: wait until the pool has been read.
	if !testkit.Await(15*time.Second, 20*time.Millisecond, func() bool {
		resp, err := http.Get("http://" + serving.Admin + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == 200
	}) {
		t.Fatal("daemon not ready after 15 s")
	}
	http.DefaultClient.CloseIdleConnections()

	var seen strings.Builder // every reply, head and body
	rawSend := func(addr, head string) int {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = conn.Write([]byte(head)) // a head over the limit may be answered before it is all written
		var resp fasthttp.Response
		if err := resp.Read(bufio.NewReader(conn)); err != nil {
			t.Fatalf("%.60q: %v", head, err)
		}
		seen.WriteString(resp.String())
		return resp.StatusCode()
	}
	chatBody := `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`
	post := func(path, body string, headers ...string) string {
		h := "POST " + path + " HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
		for i := 0; i+1 < len(headers); i += 2 {
			h += headers[i] + ": " + headers[i+1] + "\r\n"
		}
		return h + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	for _, tc := range []struct {
		name, head string
		status     int
	}{
		{"valid", post("/v1/chat/completions", chatBody, "Authorization", "Bearer "+consumerKey), 200},
		{"lower-case scheme", post("/v1/chat/completions", chatBody, "Authorization", "bearer "+consumerKey), 200},
		{"stray key", post("/v1/chat/completions", chatBody, "Authorization", "Bearer "+strayKey), 401},
		{"basic scheme", post("/v1/chat/completions", chatBody, "Authorization", "Basic "+consumerKey), 401},
		{"key in the query", post("/v1/chat/completions?api_key="+consumerKey, chatBody, "Authorization", "Bearer "+consumerKey), 200},
		{"x-api-key", post("/v1/chat/completions", chatBody, "X-Api-Key", consumerKey), 401},
		{"proxy-authorization", post("/v1/chat/completions", chatBody, "Proxy-Authorization", "Bearer "+consumerKey, "Authorization", "Bearer "+consumerKey), 200},
		{"two authorization headers", post("/v1/chat/completions", chatBody, "Authorization", "Bearer "+strayKey, "Authorization", "Bearer "+consumerKey), 401},
		{"duplicate model", post("/v1/chat/completions", `{"model":"chat","model":"x"}`, "Authorization", "Bearer "+consumerKey), 400},
		{"pass-through mismatch", post("/v1/files", `{"model":"other"}`, "Authorization", "Bearer "+consumerKey, "X-Modelgate-Model", "chat"), 400},
		{"bad content-length", "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + consumerKey + "\r\nContent-Length: abc\r\n\r\n", 400},
		{"header without colon", "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + consumerKey + "\r\nno colon here\r\nContent-Length: 0\r\n\r\n", 400},
		{"no method", " /v1/chat/completions HTTP/1.1\r\nAuthorization: Bearer " + consumerKey + "\r\n\r\n", 400},
		{"binary head", "\x00\x16\x03 Authorization: Bearer " + consumerKey + "\r\n\r\n", 400},
		{"huge head", "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + consumerKey + "\r\nX-Pad: " + strings.Repeat("p", 70<<10) + "\r\n\r\n", 431},
		{"key as a header name", "GET /v1/models HTTP/1.1\r\nHost: gw\r\n" + consumerKey + ": 1\r\nAuthorization: Bearer " + consumerKey + "\r\n\r\n", 200},
	} {
		if got := rawSend(serving.API, tc.head); got != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.status)
		}
	}
	// The admin listener, with the consumer key as a wrong token and in
	// malformed heads.
	for _, head := range []string{
		"GET /admin/pool HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + consumerKey + "\r\n\r\n",
		"GET /admin/pool HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + adminToken + "\r\nContent-Length: x\r\n\r\n",
		"GET /admin/pool HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + adminToken + "\r\nbroken line\r\n\r\n",
	} {
		if got := rawSend(serving.Admin, head); got != 401 && got != 400 {
			t.Errorf("admin %.40q: %d", head, got)
		}
	}

	// 8 MiB of '[': the daemon's CPU for it. The whole process is measured,
	// so the least of three sends leaves out its unrelated background work
	// (GC, health checks) that one send may happen to meet.
	deep := `{"model":"chat","x":` + strings.Repeat("[", 8<<20-len(`{"model":"chat","x":`))
	spent := time.Duration(1<<63 - 1)
	for range 3 {
		before := cpuOf(t, cmd.Process.Pid)
		if got := rawSend(serving.API, post("/v1/chat/completions", deep, "Authorization", "Bearer "+consumerKey)); got != 400 {
			t.Errorf("8 MiB of '[': %d", got)
		}
		spent = min(spent, cpuOf(t, cmd.Process.Pid)-before)
	}
	t.Logf("8 MiB of '[': %v of the daemon's CPU (least of 3)", spent)
	if spent > 50*time.Millisecond {
		t.Errorf("8 MiB of '[' cost the daemon %v of CPU, want < 50ms", spent)
	}

	// Every admin page, with the token.
	for _, path := range []string{"/", "/metrics", "/admin/pool", "/admin/routes", "/admin/degrade", "/admin/config", "/healthz", "/readyz"} {
		if got := rawSend(serving.Admin, "GET "+path+" HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "+adminToken+"\r\n\r\n"); got != 200 {
			t.Errorf("GET %s: %d", path, got)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the daemon did not exit")
	}
	all := map[string]string{"stderr": stderr.String(), "stdout (access log)": stdout.String(), "replies and admin pages": seen.String()}
	for where, text := range all {
		for _, s := range secrets {
			if i := strings.Index(text, s); i >= 0 {
				t.Errorf("%s carries a secret: …%s…", where, text[max(0, i-120):i])
			}
		}
	}
	if !strings.Contains(all["stderr"], `"component":"fasthttp"`) {
		t.Errorf("fasthttp logged nothing about the malformed heads, so its logger was not tested: %s", all["stderr"])
	}
	if strings.Count(all["stdout (access log)"], `"consumer":"team-a"`) < 3 {
		t.Errorf("the access log misses the consumer's requests: %s", all["stdout (access log)"])
	}
}

// cpuOf is the CPU time of every thread of a process so far, from
// /proc/<pid>/task/*/schedstat (nanoseconds on the CPU).
func cpuOf(t *testing.T, pid int) time.Duration {
	t.Helper()
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/schedstat")
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no schedstat for %d: %v", pid, err)
	}
	var total time.Duration
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			total += time.Duration(n)
		}
	}
	return total
}
