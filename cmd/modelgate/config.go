package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/discovery/nacos"
	"github.com/modelgate/modelgate/router"
)

// Config is the daemon's configuration file. See examples/modelgate.yaml
// for every field with its default.
type Config struct {
	Listen    string          `yaml:"listen"`    // API listener; default ":8080"
	Admin     string          `yaml:"admin"`     // admin listener; default "127.0.0.1:9090"
	LogLevel  string          `yaml:"log_level"` // debug|info|warn|error; default info
	Discovery DiscoveryConfig `yaml:"discovery"`
	Router    router.Config   `yaml:",inline"`
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
	ListInterval      time.Duration `yaml:"list_interval"`      // default 10s
	ReconcileInterval time.Duration `yaml:"reconcile_interval"` // default 3s
	EmptyPolicy       string        `yaml:"empty_policy"`       // keep|apply; default keep
	EmptyGrace        time.Duration `yaml:"empty_grace"`        // default 30s
	CacheDir          string        `yaml:"cache_dir"`          // SDK files; default <user cache>/modelgate/nacos
}

// parseConfig decodes and validates a config file, expanding ${ENV}.
func parseConfig(data []byte) (*Config, error) {
	data = []byte(os.ExpandEnv(string(data)))
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if c.Discovery.Nacos == nil && c.Discovery.Static == "" {
		return nil, errors.New("discovery: set nacos or static")
	}
	return &c, c.normalize()
}

func loadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := parseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// normalize fills defaults and validates.
func (c *Config) normalize() error {
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.Admin == "" {
		c.Admin = "127.0.0.1:9090"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	var errs []error
	d := &c.Discovery
	switch {
	case d.Nacos != nil && d.Static != "":
		errs = append(errs, errors.New("discovery: set nacos or static, not both"))
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
		c.Router.DefaultGroup = n.Groups[0]
	}
	return errors.Join(append(errs, c.Router.Validate())...)
}
