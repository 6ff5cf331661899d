package router

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modelgate/modelgate/discovery"
)

// Route maps what clients send as "model" to the service that serves it.
type Route struct {
	// Model is the name clients send. Required.
	Model string `yaml:"model"`
	// Aliases are other names for the same route.
	Aliases []string `yaml:"aliases"`
	// Service is the Nacos service, "service" (in the default group) or
	// "GROUP@@service". Default: Model.
	Service string `yaml:"service"`
	// UpstreamModel replaces the "model" field sent upstream. Default: keep.
	UpstreamModel string `yaml:"upstream_model"`
	// Tags an instance must carry.
	Tags map[string]string `yaml:"tags"`
	// Timeout caps a whole attempt, stream included. Default 10m.
	Timeout time.Duration `yaml:"timeout"`
	// FirstByteTimeout caps the wait for the reply headers and, for a
	// stream, for the first event. Default 60s.
	FirstByteTimeout time.Duration `yaml:"first_byte_timeout"`
	// Retries is how many other instances are tried after a failure before
	// the first byte reached the client. Default 0.
	Retries int `yaml:"retries"`

	serviceKey string
}

// Config is the router's configuration. Zero values take the defaults.
type Config struct {
	Routes []Route `yaml:"routes"`
	// DefaultGroup is the group of a route's service given without one.
	// Default discovery.DefaultGroup.
	DefaultGroup string `yaml:"-"`
	// MaxBodySize is the largest request body accepted. Default 8 MiB.
	MaxBodySize int `yaml:"max_body_size"`
	// ConnectTimeout caps dialing an instance. Default 3s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

const (
	defaultTimeout          = 10 * time.Minute
	defaultFirstByteTimeout = 60 * time.Second
	defaultMaxBodySize      = 8 << 20
	defaultConnectTimeout   = 3 * time.Second
)

// Validate fills documented defaults in one place and checks every field;
// each error names its field. It is idempotent.
func (c *Config) Validate() error {
	if c.DefaultGroup == "" {
		c.DefaultGroup = discovery.DefaultGroup
	}
	if c.MaxBodySize <= 0 {
		c.MaxBodySize = defaultMaxBodySize
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = defaultConnectTimeout
	}
	var errs []error
	names := map[string]int{}
	for i := range c.Routes {
		r := &c.Routes[i]
		field := func(f string) string { return fmt.Sprintf("routes[%d].%s", i, f) }
		if strings.TrimSpace(r.Model) == "" {
			errs = append(errs, fmt.Errorf("%s: required", field("model")))
		}
		for _, n := range append([]string{r.Model}, r.Aliases...) {
			if j, dup := names[n]; dup && n != "" {
				errs = append(errs, fmt.Errorf("%s: name %q already used by routes[%d]", field("aliases"), n, j))
			}
			names[n] = i
		}
		if r.Service == "" {
			r.Service = r.Model
		}
		g, s := discovery.SplitServiceKey(r.Service, c.DefaultGroup)
		r.serviceKey = discovery.ServiceKey(g, s)
		if r.Timeout < 0 || r.FirstByteTimeout < 0 {
			errs = append(errs, fmt.Errorf("%s: timeouts must not be negative", field("timeout")))
		}
		if r.Timeout == 0 {
			r.Timeout = defaultTimeout
		}
		if r.FirstByteTimeout == 0 {
			r.FirstByteTimeout = defaultFirstByteTimeout
		}
		if r.Retries < 0 || r.Retries > 10 {
			errs = append(errs, fmt.Errorf("%s: %d, want 0 to 10", field("retries"), r.Retries))
		}
	}
	return errors.Join(errs...)
}

// ServiceKey is the pool key of the route's service, valid once the route
// is part of a Router.
func (r *Route) ServiceKey() string { return r.serviceKey }

// table resolves model names to routes. It is immutable.
type table struct {
	byName map[string]*Route
	routes []*Route
}

func newTable(routes []Route) *table {
	t := &table{byName: map[string]*Route{}}
	for i := range routes {
		r := &routes[i]
		t.routes = append(t.routes, r)
		t.byName[r.Model] = r
		for _, a := range r.Aliases {
			t.byName[a] = r
		}
	}
	return t
}
