package router

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/balancer/engine"
	"github.com/modelgate/modelgate/balancer/p2c"
	"github.com/modelgate/modelgate/balancer/random"
	"github.com/modelgate/modelgate/balancer/wrr"
	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/degrade"
	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/reqjson"
)

// Route maps what clients send as "model" to the service that serves it.
type Route struct {
	// Model is the name clients send, or a pattern: a literal prefix and
	// one "*" at the end ("qwen-*") matches every name with that prefix,
	// "*" alone every name. A request goes to the route it names exactly
	// (model or alias), else to the pattern with the longest prefix, "*"
	// last. Required.
	Model string `yaml:"model"`
	// Aliases are other names for the same route; names, never patterns.
	Aliases []string `yaml:"aliases"`
	// Service is the Nacos service, "service" (in the default group) or
	// "GROUP@@service". Default: Model; required for a pattern route.
	Service string `yaml:"service"`
	// UpstreamModel replaces the "model" field sent upstream. Default:
	// keep the client's, so that a pattern route forwards each name as
	// sent (and picks only instances whose metadata.model lists that name,
	// or lists none).
	UpstreamModel string `yaml:"upstream_model"`
	// Tags an instance must carry.
	Tags map[string]string `yaml:"tags"`
	// Prefer are tags of instances picked first while any is available.
	Prefer map[string]string `yaml:"prefer"`
	// Split divides traffic between instance versions (metadata
	// "version") by weight, e.g. {v1: 90, v2: 10}, however many instances
	// each has. Empty: every version, by Nacos weight.
	Split map[string]int `yaml:"split"`
	// Policy chooses among the route's candidates once tags, the split and
	// breakers have narrowed them: "p2c" (power of two choices, the
	// default), "wrr", "random", or "engine" — prefix-cache affinity,
	// engine queue and latency, weighed by Scorers (package
	// balancer/engine).
	Policy string `yaml:"policy"`
	// Scorers are the engine policy's weights and bounded load; zero
	// weights all together mean prefix 3, queue 2, latency 1, and a zero
	// load_factor 1.5. Only with policy engine.
	Scorers Scorers `yaml:"scorers"`
	// StickyHeader names a request header (a user id, say) whose value
	// keeps a client on one version of the split.
	StickyHeader string `yaml:"sticky_header"`
	// Criticality orders requests when the route degrades: sheddable
	// routes are shed first (tier 1); in the queue of their service (tier
	// 2) critical requests go before standard before sheddable. Default
	// standard.
	Criticality degrade.Class `yaml:"criticality"`
	// MaxConcurrency caps the requests in flight to the route's service
	// once a route of that service reaches tier 2 (the smallest cap of its
	// routes wins); the rest wait in a queue. Default: the sum of the
	// instances' max_concurrency, else 64.
	MaxConcurrency int `yaml:"max_concurrency"`
	// QueueTimeout is the longest a request waits in the queue. Default 10s.
	QueueTimeout time.Duration `yaml:"queue_timeout"`
	// TTFTSLO is the time-to-first-token objective; a p95 above it is a
	// degradation signal. Default: none.
	TTFTSLO time.Duration `yaml:"ttft_slo"`
	// Timeout caps a whole attempt, stream included. Default 10m.
	Timeout time.Duration `yaml:"timeout"`
	// FirstByteTimeout caps each wait for the instance: for the reply
	// headers (which a non-streamed reply sends once generation ends), for
	// a stream's first event, and any silence within a reply's body. An
	// attempt that fails before anything reached the client is retried.
	// Default 60s.
	FirstByteTimeout time.Duration `yaml:"first_byte_timeout"`
	// IdleTimeout is how long an idle connection to the route's instances
	// is kept for reuse. Default 3s: below the 5 s after which uvicorn-based
	// servers (vLLM, SGLang, LiteLLM) close idle connections. An
	// instance's metadata idle_timeout overrides it.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// Retries is how many other instances are tried after a failure before
	// the first byte reached the client. Default 0.
	Retries int `yaml:"retries"`
	// RetryOn are the upstream statuses (400 to 599) that count as a
	// failure to retry on another instance, then on the fallback routes,
	// before the first byte; any other status is relayed as it is.
	// Connection errors and timeouts are always retried. Default: 429 and
	// every 5xx; an empty list retries no status.
	RetryOn []int `yaml:"retry_on"`
	// Breaker configures the circuit breakers of the instances of the
	// route's service (one per instance, so routes of one service that set
	// it must set the same); zero fields take their defaults: 5 failures in
	// a row or a failure_ratio of 0.5 of at least min_requests 20 in a
	// window of 10s open it for open_timeout 10s, then half_open_probes 3
	// decide. A reload with other settings restarts those breakers closed.
	// Default: the balancer's (WithBalancerOptions).
	Breaker *balancer.BreakerSettings `yaml:"breaker"`
	// Fallback names routes tried in order when this one has no usable
	// instance or every attempt failed.
	Fallback []string `yaml:"fallback"`
	// Cache configures the reply cache for this route.
	Cache RouteCache `yaml:"cache"`
	// DefaultMaxTokens is the completion tokens reserved against a
	// consumer's tokens per minute for a request that states no max_tokens
	// (its real usage is settled afterwards). Default
	// degrade.DefaultMaxTokens (1024).
	DefaultMaxTokens int `yaml:"default_max_tokens"`
	// Canary rolls out a new version on the route by steps, judged against
	// a baseline version on live traffic (package canary). Default: none.
	Canary *canary.Spec `yaml:"canary"`

	serviceKey string
	meters     *modelMeters
	// pattern: Model is a pattern matching the names that start with
	// prefix.
	pattern bool
	prefix  string
	// retryOn is RetryOn as a set of statuses 400–599; nil: the default.
	retryOn *[4]uint64
}

// RouteCache is a route's reply-cache policy.
type RouteCache struct {
	// Shared lets consumers share cached replies (embeddings of public
	// text, say). Default false: each consumer's replies are its own.
	Shared bool `yaml:"shared"`
}

// names are what the route goes by, for matching the models an instance
// lists in its metadata: its model, aliases and upstream model.
func (r *Route) names() []string {
	out := append([]string{r.Model}, r.Aliases...)
	if r.UpstreamModel != "" {
		out = append(out, r.UpstreamModel)
	}
	return out
}

// Scorers weigh the engine policy's scorers for one route; see
// balancer.EngineSettings.
type Scorers struct {
	Prefix     float64 `yaml:"prefix"`      // prefix-cache affinity
	Queue      float64 `yaml:"queue"`       // engine queue, else in-flight
	Latency    float64 `yaml:"latency"`     // moving average of time to first token
	LoadFactor float64 `yaml:"load_factor"` // bounded load: at most this × the mean; ≥ 1
}

func (s Scorers) settings() balancer.EngineSettings {
	return balancer.EngineSettings{Prefix: s.Prefix, Queue: s.Queue, Latency: s.Latency, LoadFactor: s.LoadFactor}
}

// policy returns the balancer policy the route names; nil for the
// balancer's default.
func (r *Route) policy() balancer.Policy {
	switch r.Policy {
	case p2c.Name:
		return p2c.New()
	case wrr.Name:
		return wrr.New()
	case random.Name:
		return random.New()
	case engine.Name:
		return engine.New(r.Scorers.settings())
	}
	return nil
}

// EngineMetricsConfig is how instances' own metrics endpoints are scraped
// (instances with metadata engine=vllm|sglang|llamacpp); read once at New.
type EngineMetricsConfig struct {
	Interval    time.Duration `yaml:"interval"`    // default 500ms
	Timeout     time.Duration `yaml:"timeout"`     // per scrape; default 1s
	Concurrency int           `yaml:"concurrency"` // scrapes at once; default 8
	// Stale is how long a scraped load counts without a newer one; then
	// in-flight counts are used. Default 3s.
	Stale time.Duration `yaml:"stale"`
}

// Config is the router's configuration. Zero values take the defaults.
type Config struct {
	Routes []Route `yaml:"routes"`
	// EngineMetrics configures the scraper of engines' metrics endpoints
	// that feeds the engine policy.
	EngineMetrics EngineMetricsConfig `yaml:"engine_metrics"`
	// DefaultGroup is the group of a route's service given without one.
	// Default discovery.DefaultGroup.
	DefaultGroup string `yaml:"-"`
	// MaxBodySize is the largest request body accepted. Default 8 MiB.
	MaxBodySize int `yaml:"max_body_size"`
	// MaxJSONDepth bounds the nesting of a request body's JSON; a deeper
	// body is refused with 400 invalid_json before any other work. Default 64.
	MaxJSONDepth int `yaml:"max_json_depth"`
	// MaxHeaderSize is the largest request head (request line and headers)
	// accepted, for fasthttp.Server.ReadBufferSize; a larger one gets 431.
	// Default 64 KiB.
	MaxHeaderSize int `yaml:"max_header_size"`
	// MaxReplySize caps a non-streamed reply, decoded; a larger one fails
	// the attempt (502 upstream_error) without being held in memory.
	// Streams are bounded per event instead. Default 64 MiB.
	MaxReplySize int `yaml:"max_reply_size"`
	// ConnectTimeout caps dialing an instance. Default 3s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxConnsPerInstance caps the connections to one instance, which is
	// the requests (streams included) in flight to it. Default 16384.
	MaxConnsPerInstance int `yaml:"max_conns_per_instance"`
	// Passthrough lists path prefixes (such as "/v1/audio/") forwarded byte
	// for byte to an instance of the route named by the request's "model"
	// field (JSON or multipart form) or its X-Modelgate-Model header. Other
	// paths get 404.
	Passthrough []string `yaml:"passthrough"`
	// Consumers are the API keys allowed in. None means no key is required.
	Consumers []Consumer `yaml:"consumers"`
	// Credentials are upstream secrets that instances name in their
	// cred_ref metadata; each is sent to the instance as a bearer token.
	Credentials map[string]Credential `yaml:"credentials"`
	// UpstreamTLS verifies https instances whose credential sets no TLS of
	// its own. Default: the system roots (or the library's WithUpstreamTLS).
	UpstreamTLS UpstreamTLS `yaml:"upstream_tls"`
	// Health configures the active health checks of instances.
	Health HealthConfig `yaml:"health"`
	// AccessLog configures the per-request log line.
	AccessLog AccessLogConfig `yaml:"access_log"`
	// Degrade configures tiered degradation and the reply cache.
	Degrade DegradeConfig `yaml:"degrade"`
	// InjectUsage asks instances for usage on streams whose client did not
	// (stream_options.include_usage) and removes that chunk from the
	// client's stream. Default true; set false for servers that reject it.
	InjectUsage *bool `yaml:"inject_usage"`

	upstreamTLS *tls.Config // built from UpstreamTLS; nil: the router's default
}

// Consumer is one API key holder.
type Consumer struct {
	Name string `yaml:"name"`
	// KeySHA256 is the hex SHA-256 of the key; the key itself is never
	// stored. `printf %s "$KEY" | sha256sum` computes it.
	KeySHA256 string `yaml:"key_sha256"`
	// Models the consumer may use; empty means all. A name allows the
	// route that has it (as model or alias) by all its names, or — when
	// the name reaches a pattern route — that name alone: a key allowed
	// "qwen-small" reaches a "qwen-*" route as qwen-small, never as
	// qwen-large. A pattern ("qwen-*", "*") allows every model name the
	// client sends with its prefix, on whatever route the name reaches.
	Models []string `yaml:"models"`
	// RPM and TPM limit requests and tokens per minute; 0 means unlimited.
	RPM int `yaml:"rpm"`
	TPM int `yaml:"tpm"`

	hash     []byte
	allowed  map[string]bool
	prefixes []string // of the patterns among Models
}

// DegradeConfig configures tiered degradation (shed → queue → cache), the
// reply cache included: the degrade.Gate's configuration, whose routes the
// router fills from its own.
type DegradeConfig = degrade.Config

// CacheConfig configures the reply cache.
type CacheConfig = degrade.CacheConfig

// Credential is where an upstream secret is read from: an environment
// variable or a file. It is read when the config is loaded.
//
// A credential may instead (or as well) carry the TLS settings of the
// https instances that name it; one with TLS alone sends no secret.
type Credential struct {
	Env  string      `yaml:"env"`
	File string      `yaml:"file"`
	TLS  UpstreamTLS `yaml:"tls"`

	secret string
	tls    *tls.Config
}

// HealthConfig configures active health checks: instances whose metadata
// names a health_path, or an engine (vllm, sglang, llamacpp: /health), are
// probed in the background; after Failures failed probes in a row one is
// not picked until a probe passes.
type HealthConfig struct {
	// Disabled turns probing off.
	Disabled bool `yaml:"disabled"`
	// Interval between two probes of one instance. Default 2s.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one probe. Default 1s.
	Timeout time.Duration `yaml:"timeout"`
	// Failures in a row that take an instance out. Default 3.
	Failures int `yaml:"failures"`
	// Concurrency bounds the probes in flight. Default 16.
	Concurrency int `yaml:"concurrency"`
}

// AccessLogConfig configures the access log.
type AccessLogConfig struct {
	// Disabled turns the access log off.
	Disabled bool `yaml:"disabled"`
	// Sample is the fraction of successful requests logged; errors are
	// always logged. Default 1.
	Sample float64 `yaml:"sample"`
}

const (
	defaultTimeout          = 10 * time.Minute
	defaultFirstByteTimeout = 60 * time.Second
	defaultMaxBodySize      = 8 << 20
	defaultMaxHeaderSize    = 64 << 10
	defaultMaxReplySize     = 64 << 20
	defaultConnectTimeout   = 3 * time.Second
	defaultIdleTimeout      = 3 * time.Second
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
	if c.MaxJSONDepth <= 0 {
		c.MaxJSONDepth = reqjson.DefaultMaxDepth
	}
	if c.MaxHeaderSize <= 0 {
		c.MaxHeaderSize = defaultMaxHeaderSize
	}
	if c.MaxReplySize <= 0 {
		c.MaxReplySize = defaultMaxReplySize
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = defaultConnectTimeout
	}
	if c.MaxConnsPerInstance <= 0 {
		c.MaxConnsPerInstance = 16384
	}
	var errs []error
	errs = append(errs, c.validateConsumers()...)
	errs = append(errs, c.loadCredentials()...)
	errs = append(errs, c.loadTLS()...)
	if em := c.EngineMetrics; em.Interval < 0 || em.Timeout < 0 || em.Stale < 0 || em.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("engine_metrics: interval, timeout, stale and concurrency must not be negative"))
	}
	if c.Health.Interval < 0 || c.Health.Timeout < 0 || c.Health.Failures < 0 || c.Health.Concurrency < 0 {
		errs = append(errs, errors.New("health: interval, timeout, failures and concurrency must not be negative"))
	}
	if c.AccessLog.Sample == 0 {
		c.AccessLog.Sample = 1
	}
	if !(c.AccessLog.Sample >= 0 && c.AccessLog.Sample <= 1) { // NaN too
		errs = append(errs, fmt.Errorf("access_log.sample: %v, want 0 to 1", c.AccessLog.Sample))
	}
	if c.InjectUsage == nil {
		t := true
		c.InjectUsage = &t
	}
	for _, err := range c.Degrade.Negatives() {
		errs = append(errs, fmt.Errorf("degrade.%w", err))
	}
	for i, p := range c.Passthrough {
		if !strings.HasPrefix(p, "/") {
			errs = append(errs, fmt.Errorf("passthrough[%d]: %q must start with /", i, p))
		}
	}
	names := map[string]int{}
	for i := range c.Routes {
		r := &c.Routes[i]
		field := func(f string) string { return fmt.Sprintf("routes[%d].%s", i, f) }
		if strings.TrimSpace(r.Model) == "" {
			errs = append(errs, fmt.Errorf("%s: required", field("model")))
		}
		prefix, pattern, perr := parsePattern(r.Model)
		if perr != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field("model"), perr))
		}
		r.pattern, r.prefix = pattern, prefix
		for k, n := range append([]string{r.Model}, r.Aliases...) {
			f := field("model")
			if k > 0 {
				f = field(fmt.Sprintf("aliases[%d]", k-1))
				if strings.Contains(n, "*") {
					errs = append(errs, fmt.Errorf("%s: %q: an alias is a name, not a pattern; make it a route of its own", f, n))
				}
			}
			if j, dup := names[n]; dup && n != "" {
				errs = append(errs, fmt.Errorf("%s: name %q already used by routes[%d]", f, n, j))
			}
			names[n] = i
		}
		if strings.Contains(r.UpstreamModel, "*") {
			errs = append(errs, fmt.Errorf("%s: %q: a model name, not a pattern", field("upstream_model"), r.UpstreamModel))
		}
		if r.Service == "" && pattern {
			errs = append(errs, fmt.Errorf("%s: required for a pattern route", field("service")))
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
		if r.QueueTimeout <= 0 {
			r.QueueTimeout = 10 * time.Second
		}
		switch {
		case r.IdleTimeout < 0:
			errs = append(errs, fmt.Errorf("%s: must not be negative", field("idle_timeout")))
		case r.IdleTimeout == 0:
			r.IdleTimeout = defaultIdleTimeout
		}
		if r.MaxConcurrency < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", field("max_concurrency")))
		}
		if !r.Criticality.Valid() {
			errs = append(errs, fmt.Errorf("%s: want critical, standard or sheddable", field("criticality")))
		}
		if err := (balancer.Route{Name: r.Model, Service: r.serviceKey, Split: r.Split}).Validate(); err != nil && len(r.Split) > 0 {
			errs = append(errs, fmt.Errorf("%s: %w", field("split"), err))
		}
		switch r.Policy {
		case "", p2c.Name, wrr.Name, random.Name:
			if r.Scorers != (Scorers{}) {
				errs = append(errs, fmt.Errorf("%s: only with policy %s", field("scorers"), engine.Name))
			}
		case engine.Name:
			if err := r.Scorers.settings().Validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", field("scorers"), err))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: %q, want p2c, wrr, random or engine", field("policy"), r.Policy))
		}
		if r.Canary != nil {
			if err := r.Canary.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", field("canary"), err))
			}
		}
		if r.Retries < 0 || r.Retries > 10 {
			errs = append(errs, fmt.Errorf("%s: %d, want 0 to 10", field("retries"), r.Retries))
		}
		r.retryOn = nil
		if r.RetryOn != nil {
			r.retryOn = new([4]uint64)
			for k, st := range r.RetryOn {
				if st < 400 || st > 599 {
					errs = append(errs, fmt.Errorf("%s: %d, want a status from 400 to 599", field(fmt.Sprintf("retry_on[%d]", k)), st))
					continue
				}
				r.retryOn[(st-400)/64] |= 1 << ((st - 400) % 64)
			}
		}
		errs = append(errs, validateBreaker(r, i, c.Routes[:i])...)
	}
	for i, r := range c.Routes {
		for _, f := range r.Fallback {
			if _, ok := names[f]; !ok || f == r.Model {
				errs = append(errs, fmt.Errorf("routes[%d].fallback: %q is not another route", i, f))
			}
		}
	}
	if len(errs) == 0 {
		if err := gateConfig(c).Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// validateBreaker checks routes[i]'s breaker settings, and that no earlier
// route of the same service sets other ones.
func validateBreaker(r *Route, i int, earlier []Route) []error {
	b := r.Breaker
	if b == nil {
		return nil
	}
	var errs []error
	field := func(f string) string { return fmt.Sprintf("routes[%d].breaker.%s", i, f) }
	if b.FailureRatio > 1 || math.IsNaN(b.FailureRatio) { // NaN would switch the ratio rule off unseen
		errs = append(errs, fmt.Errorf("%s: %v, want at most 1 (negative: no ratio rule)", field("failure_ratio"), b.FailureRatio))
	}
	if b.Window < 0 {
		errs = append(errs, fmt.Errorf("%s: must not be negative", field("window")))
	}
	if b.OpenTimeout < 0 {
		errs = append(errs, fmt.Errorf("%s: must not be negative", field("open_timeout")))
	}
	for j, e := range earlier {
		if e.Breaker != nil && e.serviceKey == r.serviceKey && *e.Breaker != *b {
			errs = append(errs, fmt.Errorf("routes[%d].breaker: differs from routes[%d]'s, whose service %s is the same (breakers are per instance)",
				i, j, r.serviceKey))
			break
		}
	}
	return errs
}

// retries reports whether an upstream status is retried on route r.
func (r *Route) retries(status int) bool {
	if r.retryOn == nil {
		return retryable(status)
	}
	i := status - 400
	return i >= 0 && i < 200 && r.retryOn[i/64]&(1<<(i%64)) != 0
}

func (c *Config) validateConsumers() []error {
	var errs []error
	seen := map[string]bool{}
	for i := range c.Consumers {
		cs := &c.Consumers[i]
		field := func(f string) string { return fmt.Sprintf("consumers[%d].%s", i, f) }
		if cs.Name == "" {
			errs = append(errs, fmt.Errorf("%s: required", field("name")))
		}
		if seen[cs.Name] {
			errs = append(errs, fmt.Errorf("%s: %q used twice", field("name"), cs.Name))
		}
		seen[cs.Name] = true
		h, err := hex.DecodeString(cs.KeySHA256)
		if err != nil || len(h) != sha256.Size {
			errs = append(errs, fmt.Errorf("%s: want 64 hex digits", field("key_sha256")))
		}
		cs.hash = h
		if cs.RPM < 0 || cs.TPM < 0 {
			errs = append(errs, fmt.Errorf("%s: rpm and tpm must not be negative", field("rpm")))
		}
		cs.allowed, cs.prefixes = nil, nil
		if len(cs.Models) > 0 {
			cs.allowed = map[string]bool{}
			for j, m := range cs.Models {
				cs.allowed[m] = true
				switch prefix, pattern, err := parsePattern(m); {
				case err != nil:
					errs = append(errs, fmt.Errorf("%s: %w", field(fmt.Sprintf("models[%d]", j)), err))
				case pattern:
					cs.prefixes = append(cs.prefixes, prefix)
				}
			}
		}
	}
	return errs
}

func (c *Config) loadCredentials() []error {
	var errs []error
	for name, cr := range c.Credentials {
		switch {
		case cr.Env == "" && cr.File == "" && cr.TLS.set():
			continue // TLS settings only
		case (cr.Env == "") == (cr.File == ""):
			errs = append(errs, fmt.Errorf("credentials.%s: set env or file", name))
			continue
		case cr.Env != "":
			v, ok := os.LookupEnv(cr.Env)
			if !ok || v == "" {
				errs = append(errs, fmt.Errorf("credentials.%s: environment variable %s is not set", name, cr.Env))
				continue
			}
			cr.secret = v
		default:
			b, err := os.ReadFile(cr.File)
			if err != nil {
				errs = append(errs, fmt.Errorf("credentials.%s: %w", name, err))
				continue
			}
			cr.secret = strings.TrimSpace(string(b))
		}
		c.Credentials[name] = cr
	}
	return errs
}

// ServiceKey is the pool key of the route's service, valid once the route
// is part of a Router.
func (r *Route) ServiceKey() string { return r.serviceKey }

// parsePattern reads a route's model or a consumer's model entry: a name,
// or a pattern — a literal prefix and one "*" at the end — whose prefix it
// returns.
func parsePattern(name string) (prefix string, pattern bool, err error) {
	i := strings.IndexByte(name, '*')
	if i < 0 {
		return "", false, nil
	}
	if i != len(name)-1 {
		return "", false, fmt.Errorf(`%q: a pattern has one "*", at its end ("qwen-*", or "*" for every name)`, name)
	}
	return name[:i], true, nil
}

// table resolves model names to routes. It is immutable.
type table struct {
	byName map[string]*Route // every route's model and aliases, patterns as written
	// patterns are the pattern routes, the longest prefix first ("*"
	// last): the first whose prefix a name has is the most specific.
	patterns []*Route
	routes   []*Route
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
		if r.pattern {
			t.patterns = append(t.patterns, r)
		}
	}
	slices.SortStableFunc(t.patterns, func(a, b *Route) int { return len(b.prefix) - len(a.prefix) })
	return t
}

// lookup returns the route of a model name: the one that has it as model
// or alias, else the pattern route with the longest matching prefix, else
// nil.
func (t *table) lookup(name string) *Route {
	if rt := t.byName[name]; rt != nil {
		return rt
	}
	for _, rt := range t.patterns {
		if strings.HasPrefix(name, rt.prefix) {
			return rt
		}
	}
	return nil
}

// sentModel is the model name a request for client's name carries
// upstream on route rt.
func (r *Route) sentModel(client string) string {
	if r.UpstreamModel != "" {
		return r.UpstreamModel
	}
	return client
}

// clone returns a deep copy of c: New and Reload keep one, and Config hands
// one out, so that no caller's slice or map is shared with the config in
// force.
func (c *Config) clone() Config {
	out := *c
	out.Routes = make([]Route, len(c.Routes))
	for i, r := range c.Routes {
		r.Aliases = slices.Clone(r.Aliases)
		r.Tags = maps.Clone(r.Tags)
		r.Prefer = maps.Clone(r.Prefer)
		r.Split = maps.Clone(r.Split)
		r.Fallback = slices.Clone(r.Fallback)
		r.RetryOn = slices.Clone(r.RetryOn)
		if r.Breaker != nil {
			b := *r.Breaker
			r.Breaker = &b
		}
		if r.retryOn != nil {
			set := *r.retryOn
			r.retryOn = &set
		}
		out.Routes[i] = r
	}
	if c.Routes == nil {
		out.Routes = nil
	}
	out.Passthrough = slices.Clone(c.Passthrough)
	out.Consumers = make([]Consumer, len(c.Consumers))
	for i, cs := range c.Consumers {
		cs.Models = slices.Clone(cs.Models)
		cs.hash = slices.Clone(cs.hash)
		cs.allowed = maps.Clone(cs.allowed)
		cs.prefixes = slices.Clone(cs.prefixes)
		out.Consumers[i] = cs
	}
	if c.Consumers == nil {
		out.Consumers = nil
	}
	out.Credentials = maps.Clone(c.Credentials)
	if c.InjectUsage != nil {
		v := *c.InjectUsage
		out.InjectUsage = &v
	}
	out.Degrade.Routes = slices.Clone(c.Degrade.Routes)
	out.Degrade.Cache.Always = slices.Clone(c.Degrade.Cache.Always)
	out.Degrade.Cache.Deterministic = slices.Clone(c.Degrade.Cache.Deterministic)
	return out
}
