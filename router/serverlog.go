package router

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/discovery"
)

// ServerLogger returns a fasthttp.Logger (for fasthttp.Server.Logger) that
// writes fasthttp's own messages to l at warn level, with the request head
// that fasthttp quotes on a malformed request cut out and any credential
// left in the message redacted. fasthttp's default logger writes those
// heads, Authorization headers included, to stderr.
func ServerLogger(l zerolog.Logger) fasthttp.Logger { return serverLogger{l} }

type serverLogger struct{ l zerolog.Logger }

func (s serverLogger) Printf(format string, args ...any) {
	s.l.Warn().Str("component", "fasthttp").Msg(Redact(fmt.Sprintf(format, args...)))
}

// headMarkers start the part of a fasthttp error that quotes the raw
// request ("buffer size=…, contents: …").
var headMarkers = []string{"buffer size=", "contents:", "buffer="}

// credential matches an auth scheme's credentials and the values of headers
// that carry secrets, wherever they appear in a message.
var credential = regexp.MustCompile(`(?i)((?:bearer|basic|token)\s+)[^\s"'\\,;]+|((?:authorization|proxy-authorization|x-api-key|api-key|cookie|set-cookie)\s*[:=]\s*)[^\r\n"\\]+`)

// Redact cuts a quoted request head out of msg and masks credentials.
func Redact(msg string) string {
	lower := strings.ToLower(msg)
	for _, m := range headMarkers {
		if i := strings.Index(lower, m); i >= 0 {
			msg, lower = msg[:i]+"[request head redacted]", lower[:i]
		}
	}
	return credential.ReplaceAllString(msg, "${1}${2}[redacted]")
}

// credential is the secret the router sends to instance in, "" if none.
func (r *Router) credential(in *discovery.Instance) string {
	if in.CredRef == "" {
		return ""
	}
	return r.cfg.Load().Credentials[in.CredRef].secret
}

// scrubHeaders drops the reply headers that quote the instance's
// credential: an instance that echoes its request's headers must not hand
// the secret to the client.
func scrubHeaders(h *fasthttp.ResponseHeader, secret string) {
	if secret == "" {
		return
	}
	var drop []string
	for k, v := range h.All() {
		if bytes.Contains(v, []byte(secret)) {
			drop = append(drop, string(k))
		}
	}
	for _, k := range drop {
		h.Del(k)
	}
}

// scrubBody masks the instance's credential in an error reply that quotes
// it ("invalid key sk-…").
func scrubBody(resp *fasthttp.Response, secret string) {
	if secret != "" && bytes.Contains(resp.Body(), []byte(secret)) {
		resp.SetBody(bytes.ReplaceAll(resp.Body(), []byte(secret), []byte("[redacted]")))
	}
}
