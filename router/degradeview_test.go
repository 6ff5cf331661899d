package router

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/internal/testkit"
)

// admin sends one request to the router's admin handler and returns the
// status and body.
func admin(r *Router, method, uri string) (int, string) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(uri)
	r.AdminHandler(nil, nil)(&ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Body())
}

// TestAdminDegradeHuman checks that /admin/degrade prints times in RFC
// 3339 and durations as "2m30s", in JSON and as a text table, and that a
// pin keeps its reason.
func TestAdminDegradeHuman(t *testing.T) {
	t0 := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen", TTFTSLO: 1500 * time.Millisecond}, {Model: "other", Service: "qwen"}}},
		WithClock(testClock{now: func() time.Time { return t0 }}))
	testkit.Eventually(t, 5*time.Second, "the first observation", func() bool {
		st, _ := g.router.Degrade().Status("chat")
		return st.Signals.TTFTSLO > 0
	})
	q := url.Values{"route": {"chat"}, "tier": {"shed"}, "ttl": {"2m30s"}, "reason": {"rack 4 maintenance"}}
	status, body := admin(g.router, "POST", "/admin/degrade?"+q.Encode())
	if status != 200 {
		t.Fatalf("pin: %d %s", status, body)
	}
	var pinned degradeView
	if err := json.Unmarshal([]byte(body), &pinned); err != nil {
		t.Fatal(err)
	}
	if pinned.PinnedUntil != "2026-05-06T07:10:39Z" || pinned.PinnedFor != "2m30s" || pinned.PinReason != "rack 4 maintenance" ||
		pinned.Reason != "pinned by the admin API: rack 4 maintenance" || pinned.Tier.String() != "shed" {
		t.Fatalf("pin reply %s", body)
	}

	status, body = admin(g.router, "GET", "/admin/degrade")
	var list []map[string]any
	if err := json.Unmarshal([]byte(body), &list); status != 200 || err != nil || len(list) != 2 {
		t.Fatalf("GET: %d %v %s", status, err, body)
	}
	chat := list[0]
	sig := chat["signals"].(map[string]any)
	if chat["route"] != "chat" || chat["pinned_until"] != "2026-05-06T07:10:39Z" || chat["pinned_for"] != "2m30s" ||
		sig["ttft_slo"] != "1.5s" || sig["ttft_p95"] != "0s" || chat["since"] != "2026-05-06T07:08:09Z" {
		t.Fatalf("GET chat: %s", body)
	}
	if strings.Contains(body, "000000") {
		t.Errorf("a duration in nanoseconds:\n%s", body)
	}

	status, body = admin(g.router, "GET", "/admin/degrade?format=text")
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if status != 200 || len(lines) != 3 || !strings.HasPrefix(lines[0], "ROUTE") ||
		!strings.Contains(lines[1], "until 2026-05-06T07:10:39Z (2m30s left)") || !strings.Contains(lines[1], "pinned by the admin API: rack 4 maintenance") ||
		!strings.HasPrefix(lines[2], "other") {
		t.Fatalf("text: %d\n%s", status, body)
	}

	for _, tc := range []struct{ name, uri string }{
		{"control character in reason", "/admin/degrade?route=chat&tier=1&ttl=60s&reason=a%0Ab"},
		{"reason too long", "/admin/degrade?route=chat&tier=1&ttl=60s&reason=" + strings.Repeat("x", maxPinReason+1)},
	} {
		if status, body := admin(g.router, "POST", tc.uri); status != 400 {
			t.Errorf("%s: %d %s", tc.name, status, body)
		}
	}
	if status, _ := admin(g.router, "GET", "/admin/degrade?format=yaml"); status != 400 {
		t.Errorf("unknown format: %d", status)
	}
	// The rejected pins changed nothing.
	if st, _ := g.router.Degrade().Status("chat"); st.PinReason != "rack 4 maintenance" {
		t.Errorf("a rejected pin replaced the reason: %+v", st)
	}
}
