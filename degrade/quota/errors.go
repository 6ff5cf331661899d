package quota

import "errors"

// ErrExceeded means a consumer is over its requests or tokens per minute.
// Quotas.Reserve wraps it with the consumer's name and returns the time
// until the request would fit; the router answers 429 with Retry-After.
var ErrExceeded = errors.New("quota: exceeded")
