package balancer

import "errors"

// Sentinel errors. Errors returned by this package wrap one of them with the
// operation and the names involved; test with errors.Is.
var (
	// ErrNoInstance means no usable instance matches the request: the route
	// or service is unknown, none of its instances is usable, none carries
	// the required tags or a version of the split, or every match was
	// already tried (Request.Exclude). The router answers 503.
	ErrNoInstance = errors.New("balancer: no available instance")

	// ErrBadRoute means a route failed validation; SetRoutes then keeps the
	// routes it had.
	ErrBadRoute = errors.New("balancer: bad route")
)
