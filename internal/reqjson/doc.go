// Package reqjson reads an OpenAI request body in one pass: it validates the
// JSON (RFC 8259, UTF-8 included), bounds its nesting depth, rejects a
// duplicated top-level key, and extracts the fields a gateway acts on —
// model, stream, stream_options.include_usage, max_tokens, temperature, n,
// user and the size of the prompt — together with where the model and
// stream_options values sit in the body, so that a rewrite replaces the one
// value every reader saw.
//
// Keys are compared decoded ("mo\u0064el" is "model") and without case, as
// Go's encoding/json matches them ("Model" and "MODEL" are "model", so a
// body whose only model key is "Model" names its model there; "Stream" is
// stream, and so on for every field it extracts). Because a duplicated
// top-level key is an error, there is no "first or last wins" question for
// the fields the gateway reads: routing, access control, the reply cache and
// the upstream all see the same value.
//
// Parse allocates nothing for bodies whose top-level keys are few and whose
// model and user values need no unescaping beyond a string each; it is safe
// for concurrent use.
package reqjson
