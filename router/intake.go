package router

import (
	"errors"

	"github.com/modelgate/modelgate/internal/reqjson"
)

func errDuplicateKey(key string) *apiError {
	return &apiError{status: 400, typ: typeInvalidRequest, code: "duplicate_key",
		message: "the request body has the key " + quoteKey(key) + " more than once (keys that differ only in case are one key, as engines written in Go read them); send each field once"}
}

var errStreamType = &apiError{status: 400, typ: typeInvalidRequest, code: "invalid_type",
	message: "stream must be a boolean"}

// quoteKey quotes a client's key for a message, cut short.
func quoteKey(k string) string {
	return (&reqjson.Error{Code: reqjson.ErrDuplicate, Key: k}).Error()[len("duplicate key "):]
}

// readJSON reads a model request's body once into x.req: what routing, the
// model ACL, the reply cache key and the upstream rewrite then use. It
// returns the reply for a body the router refuses.
func (r *Router) readJSON(x *exchange, cfg *Config, body []byte) *apiError {
	if err := reqjson.Parse(body, cfg.MaxJSONDepth, &x.req); err != nil {
		var pe *reqjson.Error
		if errors.As(err, &pe) && pe.Code == reqjson.ErrDuplicate {
			return errDuplicateKey(pe.Key)
		}
		return errMalformed(err.Error())
	}
	switch x.req.StreamKind {
	case reqjson.Absent, reqjson.True, reqjson.False, reqjson.Null:
	default:
		return errStreamType
	}
	if x.req.ModelKind != reqjson.String || x.req.Model == "" {
		return errMissingModel
	}
	x.model = x.req.Model
	x.promptLen = x.req.PromptBytes
	return nil
}

// upstreamBody is the body sent to route rt: the client's, with the model
// replaced by the route's upstream_model and include_usage set when the
// router asks for usage itself. Pass-through bodies pass unchanged.
func upstreamBody(x *exchange, rt *Route, body []byte) []byte {
	if x.api == "passthrough" {
		return body
	}
	model := ""
	if rt.UpstreamModel != "" && rt.UpstreamModel != x.model {
		model = rt.UpstreamModel
	}
	if model == "" && !x.stripUsage {
		return body
	}
	return x.req.AppendRewrite(make([]byte, 0, len(body)+64), body, model, x.stripUsage)
}
