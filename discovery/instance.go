package discovery

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultGroup is the Nacos group modelgate watches when none is configured.
const DefaultGroup = "LLM"

// Metadata keys with a meaning of their own; every other key is a tag.
const (
	MetaModel          = "model"
	MetaVersion        = "version"
	MetaBasePath       = "base_path"
	MetaScheme         = "scheme"
	MetaMaxConcurrency = "max_concurrency"
	MetaDrain          = "drain"
	MetaCredRef        = "cred_ref"
	MetaIdleTimeout    = "idle_timeout"
)

// Instance is one model server. Sources fill the raw fields (Service through
// Metadata); the Pool calls Parse before publishing it, after which an
// Instance is never modified and may be shared freely between goroutines.
type Instance struct {
	Service  string // service name, without its group
	Group    string // defaults to DefaultGroup
	Cluster  string
	Host     string
	Port     int
	Weight   float64 // relative share of traffic; Nacos default 1
	Healthy  bool
	Enabled  bool
	Metadata map[string]string

	// Parsed from Metadata by Parse.
	Models         []string          // model names served; defaults to the service name
	Version        string            // deployment version, for canary splits
	Tags           map[string]string // every metadata key without a meaning of its own
	BasePath       string            // path prefix of its OpenAI API; default "/v1"
	Scheme         string            // "http" (default) or "https"
	MaxConcurrency int               // in-flight cap; 0 means none
	Drain          bool              // no new picks; in-flight requests finish
	CredRef        string            // name of an upstream credential, never the secret
	IdleTimeout    time.Duration     // how long an idle connection to it is kept; 0: the router's default

	// ModelListed is true when metadata names the models served: the
	// instance then serves only those (see ServesAny).
	ModelListed bool

	id   string
	addr string
}

// ServiceKey returns the pool key of a service: "GROUP@@service".
func ServiceKey(group, service string) string {
	if group == "" {
		group = DefaultGroup
	}
	return group + "@@" + service
}

// SplitServiceKey splits "GROUP@@service"; a name without a group gets
// defaultGroup.
func SplitServiceKey(name, defaultGroup string) (group, service string) {
	if g, s, ok := strings.Cut(name, "@@"); ok {
		return g, s
	}
	if defaultGroup == "" {
		defaultGroup = DefaultGroup
	}
	return defaultGroup, name
}

// Parse reads the metadata contract into the typed fields and returns one
// error per bad value. A bad value never makes the instance unusable: the
// field keeps its default.
func (in *Instance) Parse() []error {
	var errs []error
	if in.Group == "" {
		in.Group = DefaultGroup
	}
	in.addr = net.JoinHostPort(in.Host, strconv.Itoa(in.Port))
	in.id = ServiceKey(in.Group, in.Service) + "#" + in.addr
	in.Models, in.ModelListed = []string{in.Service}, false
	in.Version, in.CredRef, in.IdleTimeout = "", "", 0
	in.BasePath, in.Scheme = "/v1", "http"
	in.MaxConcurrency, in.Drain = 0, false
	in.Tags = make(map[string]string, len(in.Metadata))
	bad := func(key, val, why string) {
		errs = append(errs, fmt.Errorf("instance %s: metadata %s=%q: %s", in.id, key, val, why))
	}
	for k, v := range in.Metadata {
		switch k {
		case MetaModel:
			if names := splitList(v); len(names) > 0 {
				in.Models, in.ModelListed = names, true
			}
		case MetaVersion:
			in.Version = v
		case MetaBasePath:
			in.BasePath = "/" + strings.Trim(v, "/")
			if in.BasePath == "/" {
				in.BasePath = ""
			}
		case MetaScheme:
			switch v {
			case "http", "https":
				in.Scheme = v
			default:
				bad(k, v, "want http or https")
			}
		case MetaMaxConcurrency:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				bad(k, v, "want a whole number ≥ 0")
				continue
			}
			in.MaxConcurrency = n
		case MetaDrain:
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad(k, v, "want true or false")
				continue
			}
			in.Drain = b
		case MetaCredRef:
			in.CredRef = v
		case MetaIdleTimeout:
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				bad(k, v, "want a duration > 0 such as 3s")
				continue
			}
			in.IdleTimeout = d
		default:
			in.Tags[k] = v
		}
	}
	if in.Weight < 0 {
		errs = append(errs, fmt.Errorf("instance %s: weight %v < 0, using 0", in.id, in.Weight))
		in.Weight = 0
	}
	return errs
}

func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// ID identifies the instance across updates: "GROUP@@service#host:port".
func (in *Instance) ID() string { return in.id }

// Addr is "host:port".
func (in *Instance) Addr() string { return in.addr }

// ServiceKey is the pool key of the instance's service.
func (in *Instance) ServiceKey() string {
	if n := len(in.id) - len(in.addr) - 1; in.id != "" && n >= 0 && in.id[n] == '#' {
		return in.id[:n] // in.id is the service key, "#" and the address
	}
	return ServiceKey(in.Group, in.Service)
}

// Usable reports whether the instance may receive new requests.
func (in *Instance) Usable() bool {
	return in.Healthy && in.Enabled && !in.Drain && in.Weight > 0
}

// HasTags reports whether every key=value in want is among the instance's tags.
func (in *Instance) HasTags(want map[string]string) bool {
	for k, v := range want {
		if in.Tags[k] != v {
			return false
		}
	}
	return true
}

// Serves reports whether the instance serves the named model.
func (in *Instance) Serves(model string) bool { return slices.Contains(in.Models, model) }

// ServesAny reports whether the instance may serve a route known by names
// (its model, aliases and upstream model): always when its metadata names
// no model, else when one of the models it names is among names. A name
// ending in "*" is a pattern standing for every model with the text before
// the "*" as prefix ("qwen-*"; "*" alone for any).
func (in *Instance) ServesAny(names []string) bool {
	if !in.ModelListed || len(names) == 0 {
		return true
	}
	for _, m := range in.Models {
		for _, n := range names {
			if p, ok := strings.CutSuffix(n, "*"); ok && strings.HasPrefix(m, p) || n == m {
				return true
			}
		}
	}
	return false
}

// equal reports whether two parsed instances are the same in every field a
// reader can see.
func (in *Instance) equal(o *Instance) bool {
	return in.id == o.id && in.Cluster == o.Cluster && in.Weight == o.Weight &&
		in.Healthy == o.Healthy && in.Enabled == o.Enabled && maps.Equal(in.Metadata, o.Metadata)
}
