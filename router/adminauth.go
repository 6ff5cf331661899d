package router

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/url"
	"time"

	"github.com/valyala/fasthttp"
)

// maxPinTTL bounds how long an admin may pin a tier.
const maxPinTTL = 24 * time.Hour

// GuardAdmin protects an admin handler. /healthz and /readyz stay open.
// With tokenSHA256 (the SHA-256 of the admin token) every other path needs
// "Authorization: Bearer <token>", or Basic authentication with the token as
// the password and any user name (what a browser sends for the status page);
// 401 otherwise. Whatever the token, a
// request that changes state must be a POST (405) and must not come from
// another origin: an Origin header whose host is not the request's Host, or
// Sec-Fetch-Site: cross-site, gets 403 — a page in an admin's browser
// cannot pin tiers. GET and HEAD change nothing.
func GuardAdmin(tokenSHA256 []byte, next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/healthz", "/readyz":
			next(ctx)
			return
		}
		if tokenSHA256 != nil {
			key, ok := adminToken(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization))
			sum := sha256.Sum256(key)
			if !ok || subtle.ConstantTimeCompare(sum[:], tokenSHA256) != 1 {
				adminError(ctx, 401, "admin token required: send it as Authorization: Bearer <token> (or as the password of Basic authentication)")
				// Basic too, so that a browser asks for the token (as the
				// password) and the status page can be opened.
				ctx.Response.Header.Add("WWW-Authenticate", `Bearer realm="modelgate-admin"`)
				ctx.Response.Header.Add("WWW-Authenticate", `Basic realm="modelgate-admin", charset="UTF-8"`)
				return
			}
		}
		if !ctx.IsGet() && !ctx.IsHead() {
			if !ctx.IsPost() {
				adminError(ctx, 405, "GET, HEAD or POST")
				return
			}
			if crossOrigin(ctx) {
				adminError(ctx, 403, "cross-origin admin requests are refused")
				return
			}
		}
		next(ctx)
	}
}

// adminToken reads the admin token from an Authorization header: Bearer,
// or Basic with the token as the password.
func adminToken(h []byte) ([]byte, bool) {
	if key, ok := bearer(h); ok {
		return key, true
	}
	h = bytes.TrimSpace(h)
	i := bytes.IndexAny(h, " \t")
	if i < 0 || !bytes.EqualFold(h[:i], []byte("Basic")) {
		return nil, false
	}
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(h[i:])))
	if err != nil {
		return nil, false
	}
	_, pass, ok := bytes.Cut(raw, []byte(":"))
	return pass, ok && len(pass) > 0
}

// crossOrigin reports whether a browser sent the request from a page of
// another origin.
func crossOrigin(ctx *fasthttp.RequestCtx) bool {
	if site := ctx.Request.Header.Peek("Sec-Fetch-Site"); len(site) > 0 &&
		!bytes.Equal(site, []byte("same-origin")) && !bytes.Equal(site, []byte("none")) {
		return true
	}
	origin := ctx.Request.Header.Peek("Origin")
	if len(origin) == 0 {
		return false
	}
	u, err := url.Parse(string(origin))
	return err != nil || u.Host == "" || u.Host != string(ctx.Request.Header.Host())
}

func adminError(ctx *fasthttp.RequestCtx, status int, msg string) {
	(&apiError{status: status, typ: typeAuth, message: msg}).write(ctx)
}
