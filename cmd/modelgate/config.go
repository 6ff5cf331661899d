package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/modelgate/modelgate/degrade/redisstore"
	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/discovery/nacos"
	"github.com/modelgate/modelgate/discovery/static"
	"github.com/modelgate/modelgate/router"
)

// Config is the daemon's configuration file. See examples/modelgate.yaml
// for every field with its default.
type Config struct {
	Listen    string          `yaml:"listen"`    // API listener; default ":8080"
	Admin     AdminConfig     `yaml:"admin"`     // the admin listener and its token
	LogLevel  string          `yaml:"log_level"` // debug|info|warn|error; default info
	Discovery DiscoveryConfig `yaml:"discovery"`
	// ConfigSource, when set, is where the routing part of the config
	// (everything but listen, admin, log_level, discovery and
	// config_source) comes from, live. Default: this file, re-read on
	// change and on SIGHUP.
	ConfigSource *ConfigSource `yaml:"config_source"`
	// Register, when set, registers this daemon in Nacos so that an
	// upstream gateway can discover modelgate replicas; it deregisters on
	// shutdown, before draining.
	Register *RegisterConfig `yaml:"register"`
	// Redis, when set, holds the consumer quotas and the reply cache that
	// several replicas share.
	Redis *RedisConfig `yaml:"redis"`
	// CanarySync, when set, keeps the canary rollouts in a Nacos Config
	// entry that every replica reads and writes: rollouts published there
	// start everywhere, each replica's steps and verdicts are written back,
	// and the first abort stops the rollout on all of them and at the next
	// start. Default: each daemon runs its rollouts alone.
	CanarySync *NacosConfigRef `yaml:"canary_sync"`
	Router     router.Config   `yaml:",inline"`
}

// AdminConfig is the admin listener. In YAML it is a mapping, or just the
// listen address as a string.
type AdminConfig struct {
	// Listen is the admin listener's address. Default "127.0.0.1:9090".
	Listen string `yaml:"listen"`
	// TokenSHA256 is the hex SHA-256 of the admin token; every admin path
	// but /healthz and /readyz then needs Authorization: Bearer <token>.
	TokenSHA256 string `yaml:"token_sha256"`
	// TokenEnv names an environment variable holding the token itself, an
	// alternative to TokenSHA256.
	TokenEnv string `yaml:"token_env"`

	hash []byte
}

// UnmarshalYAML accepts the listen address alone ("127.0.0.1:9090") or a
// mapping.
func (a *AdminConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&a.Listen)
	}
	type plain AdminConfig
	return n.Decode((*plain)(a))
}

// normalize checks the token settings.
func (a *AdminConfig) normalize() []error {
	var errs []error
	switch {
	case a.TokenSHA256 != "" && a.TokenEnv != "":
		errs = append(errs, errors.New("admin: set token_sha256 or token_env, not both"))
	case a.TokenSHA256 != "":
		h, err := hex.DecodeString(a.TokenSHA256)
		if err != nil || len(h) != sha256.Size {
			errs = append(errs, errors.New("admin.token_sha256: want 64 hex digits"))
		}
		a.hash = h
	case a.TokenEnv != "":
		v := os.Getenv(a.TokenEnv)
		if v == "" {
			errs = append(errs, fmt.Errorf("admin.token_env: environment variable %s is not set", a.TokenEnv))
		}
		sum := sha256.Sum256([]byte(v))
		a.hash = sum[:]
	}
	return errs
}

// exposed refuses an admin listener off loopback without a token.
func (a *AdminConfig) exposed() error {
	if a.hash == nil && !loopback(a.Listen) {
		return fmt.Errorf("refusing to start: the admin listener %s is not on loopback and has no token; set admin.token_sha256 or admin.token_env, or listen on 127.0.0.1", a.Listen)
	}
	return nil
}

// loopback reports whether a listen address binds loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// RedisConfig is the shared store of quotas and cached replies.
type RedisConfig struct {
	Addr     string        `yaml:"addr"` // "host:port"; required
	Username string        `yaml:"username"`
	Password string        `yaml:"password"`
	DB       int           `yaml:"db"`
	Timeout  time.Duration `yaml:"timeout"` // per call; default 50ms
	// QuotaFallback is what quotas do while Redis does not answer: local
	// (per-process buckets, the default), open (admit) or closed (refuse).
	QuotaFallback string `yaml:"quota_fallback"`
	Quotas        *bool  `yaml:"quotas"` // share consumer quotas; default true
	Cache         *bool  `yaml:"cache"`  // share the reply cache; default true
}

// RegisterConfig is how the daemon registers itself in Nacos.
type RegisterConfig struct {
	Service string            `yaml:"service"` // default "modelgate"
	Group   string            `yaml:"group"`   // default "DEFAULT_GROUP"
	IP      string            `yaml:"ip"`      // default: the listen host, or the first non-loopback address
	Port    int               `yaml:"port"`    // default: the listen port
	Weight  float64           `yaml:"weight"`  // default 1
	Meta    map[string]string `yaml:"metadata"`
}

// ConfigSource names a Nacos Config entry holding the routing config.
type ConfigSource struct {
	Nacos *NacosConfigRef `yaml:"nacos"`
}

// NacosConfigRef is a Nacos Config dataId in a group, read through the
// servers of discovery.nacos.
type NacosConfigRef struct {
	DataID string `yaml:"data_id"` // default "modelgate.yaml" (config_source), "modelgate-canary.yaml" (canary_sync)
	Group  string `yaml:"group"`   // default the first discovery group
}

// DiscoveryConfig chooses one source of instances.
type DiscoveryConfig struct {
	Nacos  *NacosConfig `yaml:"nacos"`
	Static string       `yaml:"static"` // path of a static pool file
}

// NacosConfig configures discovery from Nacos.
type NacosConfig struct {
	Servers           []string      `yaml:"servers"`   // "host:port"; required
	Namespace         string        `yaml:"namespace"` // default: public
	Groups            []string      `yaml:"groups"`    // default ["LLM"]
	Username          string        `yaml:"username"`
	Password          string        `yaml:"password"`
	AccessKey         string        `yaml:"access_key"` // with secret_key: signed requests
	SecretKey         string        `yaml:"secret_key"`
	TLS               *NacosTLS     `yaml:"tls"`                // default plain HTTP and gRPC
	ListInterval      time.Duration `yaml:"list_interval"`      // default 1.5s
	ReconcileInterval time.Duration `yaml:"reconcile_interval"` // default 60s
	ReconcileRate     float64       `yaml:"reconcile_rate"`     // backstop reads per second; default 1
	EmptyPolicy       string        `yaml:"empty_policy"`       // keep|apply; default keep
	EmptyGrace        time.Duration `yaml:"empty_grace"`        // default 30s
	CacheDir          string        `yaml:"cache_dir"`          // SDK files; default <user cache>/modelgate/nacos
	// Snapshot is the file the pool is kept in, to serve from when Nacos
	// cannot be reached at start; "off" keeps none. Default
	// <cache_dir>/pool-<hash of servers, namespace, groups>.json.
	Snapshot string `yaml:"snapshot"`
}

// NacosTLS reaches Nacos over TLS (HTTP API and the SDK's gRPC).
type NacosTLS struct {
	CAFile     string `yaml:"ca_file"`     // PEM roots; default the system's
	ServerName string `yaml:"server_name"` // default each server's host
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${VAR} with the environment variable VAR in every
// scalar value of the parsed document n (never in keys, never as raw text,
// so that a value holding '"' or ' #' stays one value). A bare $ is left
// alone, so secrets and regexps may contain it. An unset VAR is an error at
// its line unless optional (then it expands to ""). A plain scalar is typed
// anew after expansion, so `port: ${PORT}` may hold a number.
func expandEnv(n *yaml.Node, optional bool) ConfigErrors {
	var errs ConfigErrors
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Kind {
		case yaml.ScalarNode:
			if !strings.Contains(n.Value, "${") {
				return
			}
			v := envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
				name := m[2 : len(m)-1]
				val, ok := os.LookupEnv(name)
				if !ok && !optional {
					errs = append(errs, ConfigError{Line: n.Line, Msg: fmt.Sprintf("${%s}: environment variable not set", name)})
				}
				return val
			})
			if v != n.Value {
				n.Value = v
				if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 && n.Tag == "!!str" {
					n.Tag = ""
				}
			}
		case yaml.MappingNode:
			for i := 1; i < len(n.Content); i += 2 {
				walk(n.Content[i])
			}
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c)
			}
		}
	}
	walk(n)
	return errs
}

// decodeYAML parses data into out: syntax errors end it (ok false); unset
// environment variables, unknown fields and type mistakes are collected,
// each with its line. root is the parsed document, for the lines of later
// validation errors.
func decodeYAML(data []byte, out any, envOptional bool) (root *yaml.Node, errs ConfigErrors, ok bool) {
	root = &yaml.Node{}
	if err := yaml.Unmarshal(data, root); err != nil {
		return nil, fromYAML(err), false
	}
	// Unknown fields, from the text as written (the values do not matter).
	scratch := reflect.New(reflect.TypeOf(out).Elem()).Interface()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(scratch); err != nil && !errors.Is(err, io.EOF) {
		for _, e := range fromYAML(err) {
			if strings.Contains(e.Msg, "not found in type") {
				errs = append(errs, e)
			}
		}
	}
	errs = append(errs, expandEnv(root, envOptional)...)
	if len(root.Content) == 0 {
		return root, errs, true
	}
	errs = append(errs, fractions(root, reflect.TypeOf(out), "")...)
	if err := root.Decode(out); err != nil {
		errs = append(errs, fromYAML(err)...)
	}
	return root, errs, true
}

// parseConfig decodes and validates a config file, expanding ${ENV}. Its
// error is ConfigErrors: every mistake found, each with its line.
func parseConfig(data []byte) (*Config, error) { return parseConfigOpts(data, false) }

func parseConfigOpts(data []byte, envOptional bool) (*Config, error) {
	var c Config
	root, errs, ok := decodeYAML(data, &c, envOptional)
	if !ok {
		return nil, errs
	}
	if c.Discovery.Nacos == nil && c.Discovery.Static == "" {
		errs = append(errs, ConfigError{Line: lineOf(root, "discovery"), Msg: "discovery: set nacos or static"})
	}
	errs = append(errs, fromValidation(c.normalize(), root)...)
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	return &c, nil
}

// parseRouting decodes the routing part of a config, as held in Nacos
// Config, for a daemon whose discovery uses defaultGroup.
func parseRouting(data []byte, defaultGroup string) (router.Config, error) {
	var rc router.Config
	root, errs, ok := decodeYAML(data, &rc, false)
	if !ok {
		return router.Config{}, errs
	}
	rc.DefaultGroup = defaultGroup
	errs = append(errs, fromValidation(rc.Validate(), root)...)
	if len(errs) > 0 {
		return router.Config{}, errs.sorted()
	}
	return rc, nil
}

func loadConfig(path string) (*Config, error) { return loadConfigOpts(path, false) }

// loadConfigOpts reads and validates the config file at path; with
// envOptional an unset ${VAR} expands to "" instead of failing.
func loadConfigOpts(path string, envOptional bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := parseConfigOpts(data, envOptional)
	var ces ConfigErrors
	if errors.As(err, &ces) {
		return nil, ces.in(path)
	}
	return c, err
}

// checkAddr accepts what net.Listen("tcp", addr) accepts: "host:port" or
// ":port" with a numeric port (or a service name) and a host that is empty,
// an IP or a name.
func checkAddr(addr string) error {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port or :port")
	}
	if p == "" {
		return errors.New("missing port")
	}
	if n, err := strconv.Atoi(p); err == nil && (n < 0 || n > 65535) {
		return errors.New("port out of range")
	}
	return nil
}

// normalize fills defaults and validates.
func (c *Config) normalize() error {
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.Admin.Listen == "" {
		c.Admin.Listen = "127.0.0.1:9090"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	var errs []error
	if aerrs := c.Admin.normalize(); len(aerrs) > 0 {
		errs = append(errs, aerrs...)
	} else if err := c.Admin.exposed(); err != nil {
		errs = append(errs, fmt.Errorf("admin.listen: %w", err))
	}
	if _, err := zerolog.ParseLevel(c.LogLevel); err != nil || c.LogLevel != strings.ToLower(c.LogLevel) {
		errs = append(errs, fmt.Errorf("log_level: %q, want trace, debug, info, warn, error or disabled", c.LogLevel))
	}
	for _, a := range []struct{ field, addr string }{{"listen", c.Listen}, {"admin.listen", c.Admin.Listen}} {
		if err := checkAddr(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q: %w", a.field, a.addr, err))
		}
	}
	d := &c.Discovery
	switch {
	case d.Nacos != nil && d.Static != "":
		errs = append(errs, errors.New("discovery: set nacos or static, not both"))
	case d.Static != "":
		errs = append(errs, staticCredRefs(d.Static, c.Router.Credentials)...)
	case d.Nacos != nil:
		n := d.Nacos
		if len(n.Servers) == 0 {
			errs = append(errs, errors.New("discovery.nacos.servers: required"))
		}
		if len(n.Groups) == 0 {
			n.Groups = []string{discovery.DefaultGroup}
		}
		switch nacos.EmptyPolicy(n.EmptyPolicy) {
		case "", nacos.EmptyKeep, nacos.EmptyApply:
		default:
			errs = append(errs, fmt.Errorf("discovery.nacos.empty_policy: %q, want keep or apply", n.EmptyPolicy))
		}
		if n.CacheDir == "" {
			dir, err := os.UserCacheDir()
			if err != nil {
				dir = os.TempDir()
			}
			n.CacheDir = filepath.Join(dir, "modelgate", "nacos")
		}
		if (n.AccessKey == "") != (n.SecretKey == "") {
			errs = append(errs, errors.New("discovery.nacos.access_key, secret_key: set both or neither"))
		}
		if n.ReconcileRate < 0 {
			errs = append(errs, errors.New("discovery.nacos.reconcile_rate: must not be negative"))
		}
		switch n.Snapshot {
		case "off":
		case "":
			h := sha256.Sum256([]byte(strings.Join(n.Servers, ",") + "|" + n.Namespace + "|" + strings.Join(n.Groups, ",")))
			n.Snapshot = filepath.Join(n.CacheDir, "pool-"+hex.EncodeToString(h[:6])+".json")
		}
		c.Router.DefaultGroup = n.Groups[0]
	}
	if r := c.Register; r != nil {
		if d.Nacos == nil {
			errs = append(errs, errors.New("register: needs discovery.nacos for its servers"))
		}
		if r.Service == "" {
			r.Service = "modelgate"
		}
		if r.Group == "" {
			r.Group = "DEFAULT_GROUP"
		}
		if r.Weight == 0 {
			r.Weight = 1
		}
	}
	if r := c.Redis; r != nil {
		if r.Addr == "" {
			errs = append(errs, errors.New("redis.addr: required"))
		}
		switch redisstore.Fallback(r.QuotaFallback) {
		case "", redisstore.FallbackLocal, redisstore.FallbackOpen, redisstore.FallbackClosed:
		default:
			errs = append(errs, fmt.Errorf("redis.quota_fallback: %q, want local, open or closed", r.QuotaFallback))
		}
	}
	if cs := c.ConfigSource; cs != nil {
		switch {
		case cs.Nacos == nil:
			errs = append(errs, errors.New("config_source.nacos: required"))
		case d.Nacos == nil:
			errs = append(errs, errors.New("config_source.nacos: needs discovery.nacos for its servers"))
		default:
			if cs.Nacos.DataID == "" {
				cs.Nacos.DataID = "modelgate.yaml"
			}
			if cs.Nacos.Group == "" {
				cs.Nacos.Group = d.Nacos.Groups[0]
			}
		}
	}
	if cs := c.CanarySync; cs != nil {
		if d.Nacos == nil {
			errs = append(errs, errors.New("canary_sync: needs discovery.nacos for its servers"))
		} else {
			if cs.DataID == "" {
				cs.DataID = "modelgate-canary.yaml"
			}
			if cs.Group == "" {
				cs.Group = d.Nacos.Groups[0]
			}
		}
	}
	return errors.Join(append(errs, c.Router.Validate())...)
}

// staticCredRefs checks that every instance of the static pool file at
// path names, in metadata cred_ref, a configured credential: a static pool
// is config, so a dangling name is a mistake found by check and reload (an
// unreadable file is left to the pool source, which reports it).
func staticCredRefs(path string, creds map[string]router.Credential) []error {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	pool, err := static.Parse(data)
	if err != nil {
		return nil
	}
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(pool)) {
		for _, in := range pool[key] {
			if ref := in.Metadata[discovery.MetaCredRef]; ref != "" {
				if _, ok := creds[ref]; !ok {
					errs = append(errs, fmt.Errorf("discovery.static: %s: instance %s of %s: cred_ref %q names no credential", path, net.JoinHostPort(in.Host, strconv.Itoa(in.Port)), key, ref))
				}
			}
		}
	}
	return errs
}
