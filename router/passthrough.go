package router

import (
	"bytes"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"
)

// modelHeader names the route of a pass-through request that carries no
// "model" field (GET /v1/files, say).
const modelHeader = "X-Modelgate-Model"

func (r *Router) isPassthrough(path []byte) bool {
	for _, p := range r.cfg.Load().Passthrough {
		if bytes.HasPrefix(path, []byte(p)) {
			return true
		}
	}
	return false
}

// servePassthrough forwards a request on a pass-through path byte for byte to
// an instance of the route its model names. The upstream is always a
// discovered instance, never a host the client names.
func (r *Router) servePassthrough(ctx *fasthttp.RequestCtx) {
	x, cfg := r.begin(ctx, "passthrough")
	if !r.checkClient(ctx, x, cfg) {
		return
	}
	body := ctx.Request.Body()
	x.model = passthroughModel(ctx, body)
	if x.model == "" {
		r.fail(ctx, x, &apiError{status: 400, typ: typeInvalidRequest, code: "missing_model",
			message: "name the model in the body's model field or the " + modelHeader + " header"})
		return
	}
	rt := r.resolve(ctx, x)
	if rt == nil {
		return
	}
	r.forward(ctx, x, rt, body, nil) // bytes pass unchanged: no model rewrite
}

// passthroughModel finds the model of a pass-through request: the header,
// else the JSON body's "model", else a multipart form's "model" field.
func passthroughModel(ctx *fasthttp.RequestCtx, body []byte) string {
	if h := ctx.Request.Header.Peek(modelHeader); len(h) > 0 {
		return string(h)
	}
	ct := ctx.Request.Header.ContentType()
	switch {
	case bytes.HasPrefix(ct, []byte("application/json")):
		return gjson.GetBytes(body, "model").Str
	case bytes.HasPrefix(ct, []byte("multipart/form-data")):
		form, err := ctx.MultipartForm()
		if err != nil {
			return ""
		}
		if v := form.Value["model"]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
	}
	return ""
}
