package router

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/mockllm"
)

func TestRedact(t *testing.T) {
	for _, msg := range []string{
		`error when serving connection "127.0.0.1:8080"<->"127.0.0.1:5555": error when reading request headers: cannot find whitespace in the first line of request. buffer size=120, contents: "POST /v1/chat HTTP/1.1\r\nAuthorization: Bearer sk-SECRET\r\n"`,
		`unexpected header: Authorization: bearer sk-SECRET`,
		`x-api-key: sk-SECRET`,
		`cookie=session=sk-SECRET`,
	} {
		out := Redact(msg)
		if strings.Contains(out, "sk-SECRET") {
			t.Errorf("Redact(%q) = %q", msg, out)
		}
	}
	if got := Redact(`error when serving connection "a"<->"b": read: connection reset`); !strings.Contains(got, "connection reset") {
		t.Errorf("a message without a head changed: %q", got)
	}
}

// TestForwardedHeaders: X-Forwarded-For is appended to, X-Forwarded-Host and
// X-Forwarded-Proto are the router's own, whatever the client sent.
func TestForwardedHeaders(t *testing.T) {
	var mu sync.Mutex
	var got fasthttp.RequestHeader
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		ctx.Request.Header.CopyTo(&got)
		mu.Unlock()
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"choices":[]}`)
	}}
	go func() { _ = up.Serve(ln) }()
	t.Cleanup(func() { _ = up.Shutdown() })
	g := newGateway(t, Config{Routes: []Route{{Model: "m"}}})
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	p, _ := strconv.Atoi(port)
	g.pool.Update(discovery.ServiceKey("", "m"), []*discovery.Instance{{Service: "m", Host: host, Port: p, Weight: 1, Healthy: true, Enabled: true}})
	g.synced()
	resp := g.do("POST", "/v1/chat/completions", `{"model":"m","messages":[]}`,
		"X-Forwarded-For", "203.0.113.7", "X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "https", "Forwarded", "for=1.2.3.4")
	if resp.StatusCode() != 200 {
		t.Fatalf("%d %s", resp.StatusCode(), resp.Body())
	}
	mu.Lock()
	defer mu.Unlock()
	if v := string(got.Peek("X-Forwarded-For")); v != "203.0.113.7, 127.0.0.1" {
		t.Errorf("X-Forwarded-For %q", v)
	}
	if v := string(got.Peek("X-Forwarded-Host")); v != g.addr {
		t.Errorf("X-Forwarded-Host %q, want %q", v, g.addr)
	}
	if v := string(got.Peek("X-Forwarded-Proto")); v != "http" {
		t.Errorf("X-Forwarded-Proto %q", v)
	}
	if v := got.Peek("Forwarded"); v != nil {
		t.Errorf("Forwarded %q passed on", v)
	}
}

// TestUpstreamCredential: the instance gets its credential, never the
// client's key; an instance that echoes the credential in a header or an
// error body does not pass it on to the client.
func TestUpstreamCredential(t *testing.T) {
	t.Setenv("MG_TEST_CRED", "sk-vendor-secret")
	var mu sync.Mutex
	var auth []string
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		a := string(ctx.Request.Header.Peek("Authorization"))
		mu.Lock()
		auth = append(auth, a)
		n := len(auth)
		mu.Unlock()
		ctx.Response.Header.Set("X-Echo", a)
		ctx.SetContentType("application/json")
		if n == 2 {
			ctx.SetStatusCode(401)
			ctx.SetBodyString(`{"error":{"message":"bad key ` + a + `"}}`)
			return
		}
		ctx.SetBodyString(`{"choices":[]}`)
	}}
	go func() { _ = up.Serve(ln) }()
	t.Cleanup(func() { _ = up.Shutdown() })
	g := newGateway(t, Config{Routes: []Route{{Model: "m"}}, Credentials: map[string]Credential{"vendor": {Env: "MG_TEST_CRED"}},
		Consumers: []Consumer{{Name: "a", KeySHA256: sha256Hex("client-key")}}})
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	p, _ := strconv.Atoi(port)
	g.pool.Update(discovery.ServiceKey("", "m"), []*discovery.Instance{{Service: "m", Host: host, Port: p, Weight: 1, Healthy: true, Enabled: true,
		Metadata: map[string]string{"cred_ref": "vendor"}}})
	g.synced()
	for i, want := range []int{200, 401} {
		resp := g.do("POST", "/v1/chat/completions", `{"model":"m","messages":[]}`, "Authorization", "Bearer client-key")
		if resp.StatusCode() != want {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode(), resp.Body())
		}
		if strings.Contains(resp.String(), "sk-vendor-secret") {
			t.Fatalf("request %d: the client got the credential:\n%s", i, resp.String())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range auth {
		if a != "Bearer sk-vendor-secret" {
			t.Errorf("the instance got Authorization %q", a)
		}
	}
}

// TestModelsPerKey: with consumers, /v1/models needs a key and lists only
// that key's models.
func TestModelsPerKey(t *testing.T) {
	g := newGateway(t, Config{
		Routes: []Route{{Model: "cheap", Aliases: []string{"cheap-alias"}}, {Model: "premium"}},
		Consumers: []Consumer{{Name: "a", KeySHA256: sha256Hex("key-a"), Models: []string{"cheap"}},
			{Name: "b", KeySHA256: sha256Hex("key-b")}},
	})
	g.mocks("cheap", 1, mockllm.Config{}, nil)
	g.mocks("premium", 1, mockllm.Config{}, nil)
	list := func(key string) (int, string) {
		resp := g.do("GET", "/v1/models", "", "Authorization", key)
		var ids []string
		for _, id := range gjson.GetBytes(resp.Body(), "data.#.id").Array() {
			ids = append(ids, id.Str)
		}
		return resp.StatusCode(), strings.Join(ids, ",")
	}
	if code, _ := list(""); code != 401 {
		t.Errorf("no key: %d", code)
	}
	if code, ids := list("Bearer key-a"); code != 200 || ids != "cheap" {
		t.Errorf("key a: %d %q", code, ids)
	}
	if code, ids := list("bearer key-b"); code != 200 || ids != "cheap,cheap-alias,premium" {
		t.Errorf("key b: %d %q", code, ids)
	}
}
