package router

import (
	"encoding/json"
	"strconv"

	"github.com/valyala/fasthttp"
)

// OpenAI error types.
const (
	typeInvalidRequest = "invalid_request_error"
	typeAuth           = "authentication_error"
	typePermission     = "permission_error"
	typeNotFound       = "not_found_error"
	typeRateLimit      = "rate_limit_error"
	typeServer         = "server_error"
	typeUnavailable    = "service_unavailable"
	typeTimeout        = "timeout_error"
)

// apiError is one reply a client can get instead of a model's answer.
type apiError struct {
	status     int
	typ        string
	code       string // "" encodes as null
	message    string
	retryAfter int // seconds; 0 sends no Retry-After
}

func (e *apiError) Error() string { return e.message }

// The replies of DESIGN.md's error table. Messages that depend on the
// request are built with the helpers below.
func errMalformed(why string) *apiError {
	return &apiError{status: 400, typ: typeInvalidRequest, code: "invalid_json", message: "request body is not valid JSON: " + why}
}

var (
	errMissingModel = &apiError{status: 400, typ: typeInvalidRequest, code: "missing_model",
		message: "you must provide a model parameter"}
	errBodyTooLarge = &apiError{status: 413, typ: typeInvalidRequest, code: "request_too_large",
		message: "request body is larger than the gateway's limit"}
	errNoRoute = &apiError{status: 404, typ: typeNotFound, code: "not_found",
		message: "no such endpoint"}
	errUpstreamTimeout = &apiError{status: 504, typ: typeTimeout, code: "upstream_timeout",
		message: "the model instance did not answer in time"}
	errMethod = &apiError{status: 405, typ: typeInvalidRequest, code: "method_not_allowed",
		message: "method not allowed"}
	errHeaderTooLarge = &apiError{status: 431, typ: typeInvalidRequest, code: "request_header_too_large",
		message: "the request head is larger than the gateway's limit"}
	errReadTimeout = &apiError{status: 408, typ: typeInvalidRequest, code: "request_timeout",
		message: "the request was not received in time"}
	errBadHead = &apiError{status: 400, typ: typeInvalidRequest, code: "invalid_request",
		message: "the request is not valid HTTP/1.1"}
)

func errUnknownModel(model string) *apiError {
	return &apiError{status: 404, typ: typeInvalidRequest, code: "model_not_found",
		message: "the model `" + model + "` does not exist or you do not have access to it"}
}

func errNoInstance(model string) *apiError {
	return &apiError{status: 503, typ: typeUnavailable, code: "no_instance", retryAfter: 1,
		message: "the model `" + model + "` has no instance available right now; retry later"}
}

func errUpstream(why string) *apiError {
	return &apiError{status: 502, typ: typeServer, code: "upstream_error",
		message: "the model instance failed before replying: " + why}
}

// write sends e as the reply.
func (e *apiError) write(ctx *fasthttp.RequestCtx) {
	ctx.Response.Reset()
	ctx.SetStatusCode(e.status)
	ctx.SetContentType("application/json")
	if e.retryAfter > 0 {
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	ctx.SetBody(e.appendJSON(nil))
}

// appendJSON appends {"error":{...}} to b.
func (e *apiError) appendJSON(b []byte) []byte {
	var code *string
	if e.code != "" {
		code = &e.code
	}
	body, _ := json.Marshal(errorBody{Error: errorDetail{Message: e.message, Type: e.typ, Code: code}})
	return append(b, body...)
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}
