package router

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/modelgate/modelgate/discovery"
)

// UpstreamTLS configures how modelgate verifies instances with scheme
// https: a private CA, the name their certificate must carry, or, only when
// set explicitly, no verification at all (logged as a warning at start and
// at each reload).
type UpstreamTLS struct {
	// CAFile is a PEM file of CA certificates that replace the system
	// roots. Default: the system roots.
	CAFile string `yaml:"ca_file"`
	// ServerName is the name the certificate is checked against. Default:
	// the instance's host.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any certificate. Never a default.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

func (u UpstreamTLS) set() bool { return u.CAFile != "" || u.ServerName != "" || u.InsecureSkipVerify }

// build returns the tls.Config of u, nil if u sets nothing.
func (u UpstreamTLS) build() (*tls.Config, error) {
	if !u.set() {
		return nil, nil
	}
	c := &tls.Config{ServerName: u.ServerName, InsecureSkipVerify: u.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // explicit opt-in, warned about
	if u.CAFile != "" {
		pem, err := os.ReadFile(u.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate in it", u.CAFile)
		}
		c.RootCAs = pool
	}
	return c, nil
}

// loadTLS builds the TLS configurations of the config: the default one
// (upstream_tls) and each credential's (credentials.NAME.tls).
func (c *Config) loadTLS() []error {
	var errs []error
	var err error
	if c.upstreamTLS, err = c.UpstreamTLS.build(); err != nil {
		errs = append(errs, fmt.Errorf("upstream_tls: %w", err))
	}
	for name, cr := range c.Credentials {
		if cr.tls, err = cr.TLS.build(); err != nil {
			errs = append(errs, fmt.Errorf("credentials.%s.tls: %w", name, err))
		}
		c.Credentials[name] = cr
	}
	return errs
}

// warnInsecure logs each TLS configuration that skips verification.
func (r *Router) warnInsecure(cfg *Config) {
	if cfg.UpstreamTLS.InsecureSkipVerify {
		r.log.Warn().Str("field", "upstream_tls.insecure_skip_verify").Msg("https instances are not verified: any certificate is accepted")
	}
	for name, cr := range cfg.Credentials {
		if cr.TLS.InsecureSkipVerify {
			r.log.Warn().Str("field", "credentials."+name+".tls.insecure_skip_verify").
				Msg("https instances naming this credential are not verified: any certificate is accepted")
		}
	}
}

// tlsFor is the TLS configuration for instance in: its credential's, else
// the config's upstream_tls, else nil (the router's default).
func (r *Router) tlsFor(in *discovery.Instance) *tls.Config {
	cfg := r.cfg.Load()
	if in.CredRef != "" {
		if cr, ok := cfg.Credentials[in.CredRef]; ok && cr.tls != nil {
			return cr.tls
		}
	}
	return cfg.upstreamTLS
}

// credentialKnown reports whether in names no credential or one the config
// holds. An instance naming an unknown one is never sent a request (it
// would go without its secret): the first time it is met it is logged, and
// each time counted in modelgate_instance_errors_total{kind="unknown_cred_ref"}.
func (r *Router) credentialKnown(in *discovery.Instance) bool {
	if in.CredRef == "" {
		return true
	}
	if _, ok := r.cfg.Load().Credentials[in.CredRef]; ok {
		return true
	}
	r.meters.unknownCredRef.Inc()
	if _, seen := r.badCredRefs.LoadOrStore(in.ID()+"|"+in.CredRef, true); !seen {
		r.log.Error().Str("instance", in.ID()).Str("cred_ref", in.CredRef).
			Msg("instance names a credential the config does not hold: not used")
	}
	return false
}
