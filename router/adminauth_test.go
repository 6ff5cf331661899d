package router

import (
	"crypto/sha256"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestGuardAdminHeaders: the admin token as Bearer or as the password of
// Basic authentication, over a real socket, with a token that holds ':'
// (a password may; the user name ends at the first one); every malformed
// header is a 401 with no trace of the token, and a head over the limit a
// 431.
func TestGuardAdminHeaders(t *testing.T) {
	const token = "ad:min"
	sum := sha256.Sum256([]byte(token))
	srv := &fasthttp.Server{Handler: GuardAdmin(sum[:], func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("in") }),
		ErrorHandler: ErrorHandler}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tt := range []struct {
		auth   string
		status int
	}{
		{"Bearer " + token, 200},
		{"bearer  " + token + " ", 200},
		{"Basic " + b64("ops:"+token), 200},
		{"basic\t" + b64(":"+token), 200}, // empty user name
		{"Basic " + b64(token), 401},      // user "ad", password "min"
		{"Basic " + b64(token+":"), 401},  // the token as the user name
		{"Basic " + b64("ops:"+token+"\x00"), 401},
		{"Basic " + strings.TrimRight(b64("ops:"+token), "="), 401}, // unpadded: not standard base64
		{"Basic " + b64("ops:"+token) + "=", 401},
		{"Basic", 401},
		{"Basic ", 401},
		{"Bearer", 401},
		{"Bearer " + token + ", Basic " + b64("ops:"+token), 401},
		{"Digest " + token, 401},
		{"Basic " + strings.Repeat("A", 3000), 401},
		{"Bearer " + strings.Repeat("x", 9000), 431}, // over fasthttp's 4 KiB head buffer
	} {
		req := fasthttp.AcquireRequest()
		req.SetRequestURI("http://" + ln.Addr().String() + "/debug/pprof/")
		req.Header.Set("Authorization", tt.auth)
		var resp fasthttp.Response
		err := fasthttp.DoTimeout(req, &resp, 10*time.Second)
		fasthttp.ReleaseRequest(req)
		if err != nil {
			t.Fatalf("%.40q: %v", tt.auth, err)
		}
		if resp.StatusCode() != tt.status || tt.status != 200 && strings.Contains(string(resp.Body()), token) {
			t.Errorf("%.40q: %d %s, want %d", tt.auth, resp.StatusCode(), resp.Body(), tt.status)
		}
	}
}
