package router

import (
	"bufio"
	"bytes"
	"mime/multipart"
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/modelgate/modelgate/internal/mockllm"
)

// hostileCase is one request a hostile client sends, and what it gets.
type hostileCase struct {
	name      string
	method    string // default POST
	path      string
	body      string
	headers   []string
	status    int
	code      string // the OpenAI error code; "" for a success
	raw       string // sent on the socket as it is, instead of a request built from the fields
	multipart map[string][]string
}

// secretKey is a key the hostile head cases send; no reply may quote it.
const secretKey = "sk-hostile-0123456789abcdef"

// headCases are hostile request heads and keys.
func headCases() []hostileCase {
	good := `{"model":"cheap","messages":[{"role":"user","content":"hi"}]}`
	chat := func(name string, status int, code string, headers ...string) hostileCase {
		return hostileCase{name: name, path: "/v1/chat/completions", body: good, headers: headers, status: status, code: code}
	}
	rawHead := func(name, head string, status int, code string) hostileCase {
		return hostileCase{name: name, raw: head, status: status, code: code}
	}
	return []hostileCase{
		chat("scheme in lower case", 200, "", "Authorization", "bearer key-a"),
		chat("scheme in upper case", 200, "", "Authorization", "BEARER  key-a "),
		chat("basic scheme", 401, "invalid_api_key", "Authorization", "Basic a2V5LWE="),
		chat("no key", 401, "invalid_api_key", "Authorization", ""),
		chat("scheme without key", 401, "invalid_api_key", "Authorization", "Bearer"),
		chat("unknown key", 401, "invalid_api_key", "Authorization", "Bearer "+secretKey),
		chat("60 KB bearer token is read", 401, "invalid_api_key", "Authorization", "Bearer "+strings.Repeat("j", 60<<10)),
		chat("70 KB header", 431, "request_header_too_large", "X-Long-Token", strings.Repeat("j", 70<<10)),
		rawHead("bad content-length with a key", "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+secretKey+"\r\nContent-Length: abc\r\n\r\n", 400, "invalid_request"),
		rawHead("header line without a colon", "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+secretKey+"\r\nthis line has no colon\r\nContent-Length: 2\r\n\r\n{}", 400, "invalid_request"),
		rawHead("no request method", " /v1/chat/completions HTTP/1.1\r\nAuthorization: Bearer "+secretKey+"\r\n\r\n", 400, "invalid_request"),
		rawHead("binary head", "\x00\x01\x02 Authorization: Bearer "+secretKey+"\r\n\r\n", 400, "invalid_request"),
		rawHead("huge head with a key", "GET /v1/models HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+secretKey+"\r\nX-Pad: "+strings.Repeat("p", 70<<10)+"\r\n\r\n", 431, "request_header_too_large"),
		{name: "models without a key", method: "GET", path: "/v1/models", headers: []string{"Authorization", ""}, status: 401, code: "invalid_api_key"},
	}
}

// passthroughCases are hostile pass-through requests: the key may use
// cheap only.
func passthroughCases() []hostileCase {
	pt := func(name, ct, body string, status int, code string, headers ...string) hostileCase {
		return hostileCase{name: "passthrough " + name, path: "/v1/files/upload", body: body,
			headers: append([]string{"Content-Type", ct}, headers...), status: status, code: code}
	}
	return []hostileCase{
		pt("header and body agree", "application/json", `{"model":"cheap"}`, 200, "", modelHeader, "cheap"),
		pt("header cheap, body premium", "application/json", `{"model":"premium"}`, 400, "model_mismatch", modelHeader, "cheap"),
		pt("header cheap, escaped body premium", "application/json", `{"mo\u0064el":"premium"}`, 400, "model_mismatch", modelHeader, "cheap"),
		pt("duplicate model in body", "application/json", `{"model":"cheap","model":"premium"}`, 400, "duplicate_key"),
		pt("escaped duplicate in body", "application/json", `{"model":"cheap","mo\u0064el":"premium"}`, 400, "duplicate_key", modelHeader, "cheap"),
		pt("JSON sent as text/plain", "text/plain", `{"model":"premium"}`, 400, "model_mismatch", modelHeader, "cheap"),
		pt("body model not allowed", "application/json", `{"model":"premium"}`, 403, "model_not_allowed"),
		pt("header model not allowed", "application/octet-stream", "binary", 403, "model_not_allowed", modelHeader, "premium"),
		pt("deep JSON", "application/json", `{"model":"cheap","x":`+strings.Repeat("[", 100)+`}`, 400, "invalid_json", modelHeader, "cheap"),
		{name: "passthrough multipart two models", path: "/v1/files/upload", multipart: map[string][]string{"model": {"cheap", "premium"}}, status: 400, code: "duplicate_key"},
		{name: "passthrough multipart disagrees with header", path: "/v1/files/upload", multipart: map[string][]string{"model": {"premium"}},
			headers: []string{modelHeader, "cheap"}, status: 400, code: "model_mismatch"},
		{name: "passthrough multipart agrees", path: "/v1/files/upload", multipart: map[string][]string{"model": {"cheap"}}, status: 200},
		{name: "prefix is not a segment", path: "/v1/filesystem/x", body: `{"model":"cheap"}`, status: 404, code: "not_found"},
		{name: "prefix itself", method: "GET", path: "/v1/files", headers: []string{modelHeader, "cheap"}, status: 200},
	}
}

// bodyCases are hostile bodies on the model and pass-through paths.
func bodyCases() []hostileCase {
	var cs []hostileCase
	apis := []struct{ path, extra string }{
		{"/v1/chat/completions", `"messages":[{"role":"user","content":"hi"}]`},
		{"/v1/completions", `"prompt":"hi"`},
		{"/v1/embeddings", `"input":"hi"`},
	}
	for _, a := range apis {
		add := func(name, body string, status int, code string) {
			cs = append(cs, hostileCase{name: a.path + " " + name, path: a.path, body: body, status: status, code: code})
		}
		add("duplicate model", `{"model":"cheap","model":"premium",`+a.extra+`}`, 400, "duplicate_key")
		add("escaped duplicate model", `{"model":"cheap",`+a.extra+`,"mo\u0064el":"premium"}`, 400, "duplicate_key")
		add("fully escaped duplicate", `{"\u006d\u006f\u0064\u0065\u006c":"premium","model":"cheap",`+a.extra+`}`, 400, "duplicate_key")
		add("duplicate stream", `{"model":"cheap","stream":false,"stream":true,`+a.extra+`}`, 400, "duplicate_key")
		add("escaped model alone", `{"mo\u0064el":"premium",`+a.extra+`}`, 403, "model_not_allowed")
		add("bad utf-8", "{\"model\":\"cheap\",\"user\":\"\xff\xfe\","+a.extra+"}", 400, "invalid_json")
		add("deep nesting", `{"model":"cheap","x":`+strings.Repeat("[", 65)+strings.Repeat("]", 65)+`}`, 400, "invalid_json")
		add("not an object", `["model","cheap"]`, 400, "invalid_json")
		add("trailing bytes", `{"model":"cheap",`+a.extra+`} {}`, 400, "invalid_json")
		add("model not a string", `{"model":["cheap"],`+a.extra+`}`, 400, "missing_model")
	}
	cs = append(cs,
		hostileCase{name: "stream as a string", path: "/v1/chat/completions", body: `{"model":"cheap","stream":"true","messages":[]}`, status: 400, code: "invalid_type"},
		hostileCase{name: "control character in a string", path: "/v1/chat/completions", body: "{\"model\":\"cheap\",\"messages\":[{\"content\":\"a\x01b\"}]}", status: 400, code: "invalid_json"},
		hostileCase{name: "lone surrogate is decoded, not refused", path: "/v1/chat/completions", body: `{"model":"cheap","user":"\ud800","messages":[{"role":"user","content":"hi"}]}`, status: 200},
		hostileCase{name: "empty body", path: "/v1/chat/completions", body: ``, status: 400, code: "invalid_json"},
		hostileCase{name: "8 MiB of [", path: "/v1/chat/completions", body: `{"model":"cheap","x":` + strings.Repeat("[", 8<<20-len(`{"model":"cheap","x":`)), status: 400, code: "invalid_json"},
		hostileCase{name: "8 MiB of {\"a\":", path: "/v1/embeddings", body: `{"model":"cheap","x":` + strings.Repeat(`{"a":`, (8<<20)/5-10), status: 400, code: "invalid_json"},
	)
	return cs
}

// send sends a hostile case on a new connection and reads the reply.
func (g *gateway) send(tc hostileCase) *fasthttp.Response {
	g.t.Helper()
	conn, err := net.Dial("tcp", g.addr)
	if err != nil {
		g.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if tc.raw != "" {
		_, err = conn.Write([]byte(tc.raw))
	} else {
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		method := tc.method
		if method == "" {
			method = "POST"
		}
		req.Header.SetMethod(method)
		req.SetRequestURI("http://" + g.addr + tc.path)
		req.Header.SetContentType("application/json")
		headers := append([]string{"Authorization", "Bearer key-a"}, tc.headers...)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		if tc.multipart != nil {
			var b bytes.Buffer
			w := multipart.NewWriter(&b)
			for k, vs := range tc.multipart {
				for _, v := range vs {
					_ = w.WriteField(k, v)
				}
			}
			_ = w.Close()
			req.Header.SetContentType(w.FormDataContentType())
			req.SetBody(b.Bytes())
		} else {
			req.SetBodyString(tc.body)
		}
		_, err = req.WriteTo(conn)
	}
	// A write error is not the test's: the gateway may answer a head over
	// the limit and close before reading the rest. The reply is read anyway.
	_ = err
	resp := &fasthttp.Response{}
	if err := resp.Read(bufio.NewReader(conn)); err != nil {
		g.t.Fatalf("reading the reply: %v", err)
	}
	return resp
}

// TestHostileInput sends every hostile case over a real socket, checks its
// status and OpenAI error code, and that the gateway serves a good request
// after each one.
func TestHostileInput(t *testing.T) {
	g := newGateway(t, Config{
		Routes:      []Route{{Model: "cheap"}, {Model: "premium"}},
		Passthrough: []string{"/v1/files"},
		Consumers:   []Consumer{{Name: "a", KeySHA256: sha256Hex("key-a"), Models: []string{"cheap"}}},
	})
	g.mocks("cheap", 1, mockllm.Config{}, nil)
	g.mocks("premium", 1, mockllm.Config{}, nil)
	cases := append(append(bodyCases(), headCases()...), passthroughCases()...)
	if len(cases) < 40 {
		t.Fatalf("%d cases, want at least 40", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := g.send(tc)
			if strings.Contains(string(resp.Body()), secretKey) || strings.Contains(resp.Header.String(), secretKey) {
				t.Fatalf("the reply quotes the key: %s", resp.Body())
			}
			if resp.StatusCode() != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode(), tc.status, resp.Body())
			}
			if code := gjson.GetBytes(resp.Body(), "error.code").Str; code != tc.code {
				t.Fatalf("code %q, want %q: %s", code, tc.code, resp.Body())
			}
			if ok := g.do("POST", "/v1/chat/completions", `{"model":"cheap","messages":[{"role":"user","content":"hi"}]}`,
				"Authorization", "Bearer key-a"); ok.StatusCode() != 200 {
				t.Fatalf("after the case: %d %s", ok.StatusCode(), ok.Body())
			}
		})
	}
}
