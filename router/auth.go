package router

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"github.com/valyala/fasthttp"
)

var (
	errMissingKey = &apiError{status: 401, typ: typeAuth, code: "invalid_api_key",
		message: "missing API key: send it as Authorization: Bearer <key>"}
	errBadKey = &apiError{status: 401, typ: typeAuth, code: "invalid_api_key",
		message: "incorrect API key"}
)

func errModelNotAllowed(model string) *apiError {
	return &apiError{status: 403, typ: typePermission, code: "model_not_allowed",
		message: "this API key may not use the model `" + model + "`"}
}

// authenticate finds the consumer of the request's bearer key. With no
// consumers configured every request is let in as nobody (nil, nil). Keys
// are compared as SHA-256 hashes in constant time, against every consumer.
func authenticate(ctx *fasthttp.RequestCtx, consumers []Consumer) (*Consumer, *apiError) {
	if len(consumers) == 0 {
		return nil, nil
	}
	key, ok := bearer(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization))
	if !ok {
		return nil, errMissingKey
	}
	sum := sha256.Sum256(key)
	var found *Consumer
	for i := range consumers {
		if subtle.ConstantTimeCompare(sum[:], consumers[i].hash) == 1 {
			found = &consumers[i]
		}
	}
	if found == nil {
		return nil, errBadKey
	}
	return found, nil
}

// bearer returns the credentials of an Authorization header with the
// Bearer scheme, whose name is case-insensitive (RFC 7235).
func bearer(h []byte) ([]byte, bool) {
	h = bytes.TrimSpace(h)
	i := bytes.IndexAny(h, " \t")
	if i < 0 || !bytes.EqualFold(h[:i], []byte("Bearer")) {
		return nil, false
	}
	key := bytes.TrimSpace(h[i:])
	return key, len(key) > 0
}

// allows reports whether the consumer may send name, which reaches route
// rt: when one of its entries names the route (any of its names), or —
// on a pattern route — names this very name, or is a pattern name matches.
func (c *Consumer) allows(rt *Route, name string) bool {
	if c == nil || c.allowed == nil {
		return true
	}
	if c.allowed[rt.Model] {
		return true
	}
	if rt.pattern {
		// An alias of a pattern route is one more name, not the route:
		// it grants that name alone.
		return c.allowed[name] || c.matches(name)
	}
	for _, a := range rt.Aliases {
		if c.allowed[a] {
			return true
		}
	}
	return c.matches(name)
}

// allowsName reports whether the consumer may use a model by this name,
// for /v1/models.
func (c *Consumer) allowsName(name string) bool {
	return c == nil || c.allowed == nil || c.allowed[name] || c.matches(name)
}

// matches reports whether one of the consumer's patterns matches name.
func (c *Consumer) matches(name string) bool {
	for _, p := range c.prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
