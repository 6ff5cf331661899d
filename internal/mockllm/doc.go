// Package mockllm is an OpenAI-compatible mock model server for tests, the
// `modelgate demo` command and benchmarks.
//
// A Server answers these endpoints, all replies shaped so that the official
// OpenAI SDKs parse them:
//
//   - POST /v1/chat/completions: a chat.completion object, or with "stream": true
//     a paced text/event-stream of chat.completion.chunk events ending in
//     "data: [DONE]".
//   - POST /v1/completions: the same with text_completion objects.
//   - POST /v1/embeddings: a list of deterministic 8-dimensional embeddings.
//   - POST /v1/responses: a Responses API response object, or with "stream":
//     true the typed events OpenAI sends (response.created, .in_progress,
//     output item and content part added, one response.output_text.delta per
//     chunk, the done events, response.completed with usage in input_tokens
//     and output_tokens), ending without [DONE]. Engine economics do not
//     apply to it.
//   - GET /v1/models: a list with one model, named after Config.Name.
//   - GET /health: "ok", for health checks.
//   - any other path under /v1/: an echo of what arrived (method, path, content
//     type, body length and SHA-256) so pass-through tests can check the bytes.
//
// Token counts are deterministic: a chat prompt costs one token per
// whitespace-separated word of every message's text plus one per message, a
// completion prompt one per word, and a reply one per word. The reply is
// Config.ReplyWords words of a fixed text, cut to max_tokens when a request asks
// for fewer (finish_reason "length").
//
// Every reply carries the header X-Mock-Instance (Config.Name) and echoes the
// request's Authorization and X-Request-Id headers as X-Mock-Authorization and
// X-Mock-Request-Id.
//
// Faults are injected with Config.FailRate (OpenAI-shaped error replies),
// Config.Latency and Config.Jitter, and with SetMode: ModeHang, ModeCloseConn and
// ModeCloseMidStream. Set and SetMode may be called from any goroutine while the
// server runs.
//
// Start listens on a real TCP socket. New plus Serve serves any net.Listener: a
// fasthttputil.InmemoryListener for benchmarks, or a tls.NewListener for a TLS
// upstream.
package mockllm
