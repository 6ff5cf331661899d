package router

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
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
