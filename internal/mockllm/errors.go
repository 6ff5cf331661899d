package mockllm

import "errors"

// Errors of the package.
var (
	// ErrClosed is returned by Serve on a Server that has been closed.
	ErrClosed = errors.New("mockllm: server closed")

	// errBadShape is returned for a JSON value of a type the mock does not
	// accept, such as a number where a message content belongs.
	errBadShape = errors.New("unexpected JSON type")

	// errDropped ends a reply body early in ModeCloseMidStream; fasthttp then
	// closes the connection without finishing the chunked encoding.
	errDropped = errors.New("mockllm: connection dropped by ModeCloseMidStream")

	// errServerDown ends a reply body early when the server closes.
	errServerDown = errors.New("mockllm: server closed")
)
