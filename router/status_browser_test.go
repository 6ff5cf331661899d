package router

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/internal/mockllm"
)

// chromium returns Debian's Chromium, installing it with scripts/chromium.sh
// if needed.
func chromium(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	out, err := exec.Command("bash", filepath.Join(filepath.Dir(file), "..", "scripts", "chromium.sh")).Output()
	if err != nil {
		t.Fatalf("no Chromium for the browser test: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestStatusPageInBrowser loads the admin status page in headless Chromium
// and checks what a person would see: routes, instances with weights and
// versions, breaker states and the refresh.
func TestStatusPageInBrowser(t *testing.T) {
	browser := chromium(t)
	g := newGateway(t, Config{Routes: []Route{
		{Model: "chat", Aliases: []string{"gpt-4o-mini"}, Service: "qwen"},
		{Model: "orphan", Service: "nobody"},
	}})
	m := g.mocks("qwen", 2, mockllm.Config{}, map[string]string{"version": "v2", "gpu": "a100"})
	for range 3 {
		if r := g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[]}`); r.StatusCode() != 200 {
			t.Fatal(r.StatusCode())
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: g.router.AdminHandler(nil, nil)}
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(ln) })
	defer func() { _ = srv.Shutdown(); wg.Wait() }()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--dump-dom", "http://"+ln.Addr().String()+"/")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	for _, want := range []string{
		`<title>modelgate status</title>`,
		`http-equiv="refresh"`,
		`data-model="chat"`, `<code>gpt-4o-mini</code>`, `<code>LLM@@qwen</code>`,
		`data-model="orphan"`,
		`data-addr="` + m[0].Addr() + `"`, `data-addr="` + m[1].Addr() + `"`,
		`<code>gpu=a100</code>`, `>v2<`, `>closed<`, `>usable<`, `discovery <span class="ok">synced</span>`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	// The orphan route shows no usable instance, in red.
	if i := strings.Index(dom, `data-model="orphan"`); i < 0 || !strings.Contains(dom[i:i+300], `class="bad">0<`) {
		t.Errorf("orphan route not shown as having no instance")
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
}
