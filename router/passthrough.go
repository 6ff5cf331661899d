package router

import (
	"bytes"
	"errors"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/internal/reqjson"
)

// modelHeader names the route of a pass-through request that carries no
// "model" field (GET /v1/files, say).
const modelHeader = "X-Modelgate-Model"

// isPassthrough reports whether path is under a pass-through prefix, on
// path-segment boundaries: "/v1/files" covers /v1/files and /v1/files/x,
// never /v1/filesystem.
func (r *Router) isPassthrough(path []byte) bool {
	for _, p := range r.cfg.Load().Passthrough {
		if underPrefix(path, p) {
			return true
		}
	}
	return false
}

func underPrefix(path []byte, p string) bool {
	if !bytes.HasPrefix(path, []byte(p)) {
		return false
	}
	return len(path) == len(p) || strings.HasSuffix(p, "/") || path[len(p)] == '/'
}

func errModelMismatch(header, body string) *apiError {
	return &apiError{status: 400, typ: typeInvalidRequest, code: "model_mismatch",
		message: "the " + modelHeader + " header names " + quoteKey(header) + " but the body's model is " + quoteKey(body) + "; send one model"}
}

// servePassthrough forwards a request on a pass-through path byte for byte to
// an instance of the route its model names. The upstream is always a
// discovered instance, never a host the client names, and the model that
// picks the route and passes the ACL is the one the instance reads.
func (r *Router) servePassthrough(ctx *fasthttp.RequestCtx) {
	x, cfg := r.begin(ctx, "passthrough")
	if !r.checkClient(ctx, x, cfg) {
		return
	}
	body := ctx.Request.Body()
	model, aerr := passthroughModel(ctx, body, cfg.MaxJSONDepth)
	if aerr != nil {
		r.fail(ctx, x, aerr)
		return
	}
	if model == "" {
		r.fail(ctx, x, &apiError{status: 400, typ: typeInvalidRequest, code: "missing_model",
			message: "name the model in the body's model field or the " + modelHeader + " header"})
		return
	}
	x.model = model
	rt := r.resolve(ctx, x)
	if rt == nil {
		return
	}
	r.forward(ctx, x, rt, body, nil) // bytes pass unchanged: no model rewrite
}

// passthroughModel finds the model of a pass-through request: the header,
// the JSON body's "model" or a multipart form's "model" field. When the
// header and the body both name one they must agree. A JSON body is read
// as for model requests (duplicate keys refused); a body that merely looks
// like JSON under another content type is checked too, since an instance
// may parse it whatever the header says.
func passthroughModel(ctx *fasthttp.RequestCtx, body []byte, maxDepth int) (string, *apiError) {
	header := string(ctx.Request.Header.Peek(modelHeader))
	inBody, aerr := bodyModel(ctx, body, maxDepth)
	switch {
	case aerr != nil:
		return "", aerr
	case header != "" && inBody != "" && header != inBody:
		return "", errModelMismatch(header, inBody)
	case header != "":
		return header, nil
	}
	return inBody, nil
}

// bodyModel is the model a pass-through body names, "" if none.
func bodyModel(ctx *fasthttp.RequestCtx, body []byte, maxDepth int) (string, *apiError) {
	ct := ctx.Request.Header.ContentType()
	json := bytes.HasPrefix(ct, []byte("application/json"))
	if bytes.HasPrefix(ct, []byte("multipart/form-data")) {
		form, err := ctx.MultipartForm()
		if err != nil {
			return "", &apiError{status: 400, typ: typeInvalidRequest, code: "invalid_multipart",
				message: "the multipart body cannot be read"}
		}
		switch v := form.Value["model"]; len(v) {
		case 0:
			return "", nil
		case 1:
			return strings.TrimSpace(v[0]), nil
		}
		return "", errDuplicateKey("model")
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || !json && trimmed[0] != '{' {
		return "", nil
	}
	var req reqjson.Request
	if err := reqjson.Parse(body, maxDepth, &req); err != nil {
		var pe *reqjson.Error
		switch {
		case errors.As(err, &pe) && pe.Code == reqjson.ErrDuplicate:
			return "", errDuplicateKey(pe.Key)
		case json:
			return "", errMalformed(err.Error())
		}
		return "", nil // not JSON after all
	}
	if req.ModelKind != reqjson.Absent && req.ModelKind != reqjson.String {
		return "", errMissingModel
	}
	return req.Model, nil
}
