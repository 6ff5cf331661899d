package degrade

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/modelgate/modelgate/degrade/replycache"
)

// Config configures a Gate. Zero values take the defaults. NewGate and
// Reload keep a deep copy, so the caller may change or reuse a Config
// afterwards without touching the Gate.
type Config struct {
	// Disabled turns tiers off: no shedding, no queue, no stale replies.
	// Quotas and fresh cache hits still apply.
	Disabled bool `yaml:"disabled"`
	// EnterAfter and ExitAfter are the hysteresis: a tier is entered after
	// its signals held that long and left after they cleared for longer.
	// Defaults 3s and 15s (Thresholds).
	EnterAfter time.Duration `yaml:"enter_after"`
	ExitAfter  time.Duration `yaml:"exit_after"`
	// Window is the span of the error-ratio and TTFT signals. Default 10s.
	Window time.Duration `yaml:"window"`
	// Interval is how often tiers are recomputed. Default 1s.
	Interval time.Duration `yaml:"interval"`
	// QueueSize bounds each service's queue in TierCap. Default 256.
	QueueSize int `yaml:"queue_size"`
	// Cache configures the reply cache.
	Cache CacheConfig `yaml:"cache"`
	// Routes are the routes the Gate admits requests for. A daemon fills
	// them from its own route table.
	Routes []Route `yaml:"-"`
}

// CacheConfig configures the reply cache and which requests it serves.
type CacheConfig struct {
	// Disabled turns the cache off: no lookups, no keys computed, nothing
	// stored. It applies on Reload like every other field.
	Disabled bool `yaml:"disabled"`
	// MaxBytes bounds the in-process cache. Default 64 MiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// FreshTTL is how long an entry serves as fresh. Default 5m.
	FreshTTL time.Duration `yaml:"fresh_ttl"`
	// StaleTTL is how long an entry is kept at all. Default 1h.
	StaleTTL time.Duration `yaml:"stale_ttl"`
	// Always and Deterministic say which requests the cache serves: the
	// APIs in Always (default [embeddings]) whatever the request, those in
	// Deterministic (default [chat, completions]) when the request sets
	// temperature 0 explicitly. Both nil: the defaults; an empty list is
	// empty.
	Always        []string `yaml:"always"`
	Deterministic []string `yaml:"deterministic"`
	// StaleFor says which requests a stale entry may answer (in TierCache,
	// or when every upstream attempt failed): "" or "policy", the requests
	// Always and Deterministic allow; "all", any request with a matching
	// entry, sampled chat included. With "all" every request's reply is
	// keyed and stored, which costs a hash per request.
	StaleFor string `yaml:"stale_for"`
}

// Route is what a Gate knows of one route.
type Route struct {
	// Name is the route's name, the key of Admit and of the controller.
	// Required, unique.
	Name string
	// Service is the service the route sends to. Routes of one service
	// share its concurrency cap and queue. Default: Name.
	Service string
	// Class orders the route's requests in the queue and decides shedding.
	Class Class
	// MaxConcurrency is the service's cap in TierCap (the smallest of its
	// routes' wins). Default: the service's instances' summed capacity
	// from the Fleet, else 64.
	MaxConcurrency int
	// QueueTimeout bounds a request's wait in the queue. Default 10s.
	QueueTimeout time.Duration
	// TTFTSLO is the time-to-first-token objective; a p95 above it is a
	// TierShed signal. Default: none.
	TTFTSLO time.Duration
	// DefaultMaxTokens is what a request that states no max_tokens is
	// assumed to generate when its consumer's tokens per minute are
	// reserved. Default DefaultMaxTokens.
	DefaultMaxTokens int
}

// DefaultMaxTokens is a route's default reservation of completion tokens
// for a request without max_tokens: a conservative estimate, larger than
// most chat replies, so that reservations seldom fall short of the usage
// they settle with.
const DefaultMaxTokens = 1024

// defaultRouteCap is a service's cap in TierCap when neither its routes
// nor its instances state one.
const defaultRouteCap = 64

// Stale policies of CacheConfig.StaleFor.
const (
	StalePolicy = "policy"
	StaleAll    = "all"
)

// withDefaults returns a deep copy of c with its defaults filled, or the
// errors of its fields.
func (c *Config) withDefaults() (Config, error) {
	out := c.clone()
	var errs []error
	errs = append(errs, c.negatives()...)
	if out.QueueSize <= 0 {
		out.QueueSize = 256
	}
	if out.Cache.Always == nil && out.Cache.Deterministic == nil {
		d := replycache.DefaultRules()
		out.Cache.Always, out.Cache.Deterministic = d.Always, d.Deterministic
	}
	switch out.Cache.StaleFor {
	case "":
		out.Cache.StaleFor = StalePolicy
	case StalePolicy, StaleAll:
	default:
		errs = append(errs, fmt.Errorf("cache.stale_for: %q, want %q or %q", out.Cache.StaleFor, StalePolicy, StaleAll))
	}
	seen := map[string]bool{}
	for i := range out.Routes {
		r := &out.Routes[i]
		switch {
		case r.Name == "":
			errs = append(errs, fmt.Errorf("routes[%d].name: required", i))
		case seen[r.Name]:
			errs = append(errs, fmt.Errorf("routes[%d].name: %q used twice", i, r.Name))
		}
		seen[r.Name] = true
		if r.Service == "" {
			r.Service = r.Name
		}
		if !r.Class.Valid() {
			errs = append(errs, fmt.Errorf("routes[%d].class: %d, want critical, standard or sheddable", i, r.Class))
		}
		if r.MaxConcurrency < 0 || r.DefaultMaxTokens < 0 {
			errs = append(errs, fmt.Errorf("routes[%d]: max_concurrency and default_max_tokens must not be negative", i))
		}
		if r.QueueTimeout <= 0 {
			r.QueueTimeout = 10 * time.Second
		}
		if r.DefaultMaxTokens == 0 {
			r.DefaultMaxTokens = DefaultMaxTokens
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("degrade: config: %w", err)
	}
	return out, nil
}

// negatives reports the durations and sizes of c set below zero, each by
// its field.
func (c *Config) negatives() []error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"enter_after", int64(c.EnterAfter)}, {"exit_after", int64(c.ExitAfter)}, {"window", int64(c.Window)},
		{"interval", int64(c.Interval)}, {"queue_size", int64(c.QueueSize)}, {"cache.max_bytes", c.Cache.MaxBytes},
		{"cache.fresh_ttl", int64(c.Cache.FreshTTL)}, {"cache.stale_ttl", int64(c.Cache.StaleTTL)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", f.name))
		}
	}
	return errs
}

// Negatives is the errors of Config fields set below zero, each naming its
// field ("enter_after: must not be negative"); Validate reports them too.
func (c Config) Negatives() []error { return c.negatives() }

// clone returns a copy of c that shares no memory with it.
func (c *Config) clone() Config {
	out := *c
	out.Routes = slices.Clone(c.Routes)
	out.Cache.Always = slices.Clone(c.Cache.Always)
	out.Cache.Deterministic = slices.Clone(c.Cache.Deterministic)
	return out
}

// thresholds are the controller's thresholds under c.
func (c *Config) thresholds() Thresholds {
	th := DefaultThresholds()
	if c.EnterAfter != 0 {
		th.EnterAfter = c.EnterAfter
	}
	if c.ExitAfter != 0 {
		th.ExitAfter = c.ExitAfter
	}
	return th
}

func (c *CacheConfig) lru() replycache.LRUConfig {
	return replycache.LRUConfig{MaxBytes: c.MaxBytes, FreshTTL: c.FreshTTL, StaleTTL: c.StaleTTL}
}

// Validate reports the errors of c's fields, each naming its field, without
// changing c; NewGate and Reload refuse a Config it refuses.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}
