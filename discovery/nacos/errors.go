package nacos

import "errors"

// ErrAuth means a Nacos server answered and refused the credentials: a
// login with a wrong username or password, or a request it forbade. It is
// wrapped with the server's own message. The Watcher never applies a
// listing or an instance list that failed with it.
var ErrAuth = errors.New("nacos: authentication refused")
