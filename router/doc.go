// Package router is modelgate's fasthttp front end: it accepts OpenAI API
// requests, resolves the model name to a route, picks an instance through a
// balancer.Picker, forwards the request (streaming server-sent events as they
// arrive), and answers every failure with an OpenAI-shaped error.
//
// Everything HTTP lives here. Errors are mapped to replies in one place
// (errors.go). Nothing read from a fasthttp.RequestCtx is used after the
// handler returns or from another goroutine: the stream writer gets copies.
package router
