package health

import (
	"context"
	"crypto/tls"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/discovery"
)

// Metadata keys the prober reads.
const (
	MetaHealthPath = "health_path"
	MetaEngine     = "engine"
)

// Engines whose servers answer GET /health with 200 once ready.
var engineHealth = map[string]string{"vllm": "/health", "sglang": "/health", "llamacpp": "/health"}

// Path returns the health path of in and whether it is probed at all.
func Path(in *discovery.Instance) (string, bool) {
	if p, ok := in.Metadata[MetaHealthPath]; ok {
		p = strings.TrimSpace(p)
		if p == "" || p == "none" || !strings.HasPrefix(p, "/") {
			return "", false
		}
		return p, true
	}
	p, ok := engineHealth[strings.ToLower(in.Metadata[MetaEngine])]
	return p, ok
}

// Reporter takes the outcome of each probe; *balancer.Balancer is one.
type Reporter interface {
	ReportHealth(id string, ok bool) bool
}

// Settings configures a Prober. The zero value of every field means its
// default.
type Settings struct {
	// Interval between two probes of one instance. Default 2s.
	Interval time.Duration
	// Timeout of one probe, connecting included. Default 1s.
	Timeout time.Duration
	// Concurrency bounds the probes in flight. Default 16.
	Concurrency int
}

func (s Settings) withDefaults() Settings {
	if s.Interval <= 0 {
		s.Interval = 2 * time.Second
	}
	if s.Timeout <= 0 {
		s.Timeout = time.Second
	}
	if s.Concurrency <= 0 {
		s.Concurrency = 16
	}
	return s
}

// Option configures a Prober.
type Option func(*Prober)

// WithLogger sets the logger (default: none).
func WithLogger(l zerolog.Logger) Option { return func(p *Prober) { p.log = l } }

// WithTLS sets the TLS configuration for instances with scheme https
// (default: the system roots).
func WithTLS(c *tls.Config) Option { return func(p *Prober) { p.client.TLSConfig = c } }

// Prober probes the instances of a pool. Create it with New; Run probes
// until its context ends. Its counters are safe for concurrent use.
type Prober struct {
	pool   *discovery.Pool
	rep    Reporter
	s      Settings
	log    zerolog.Logger
	client *fasthttp.Client

	probes, failures atomic.Uint64
}

// New returns a Prober of the instances of pool that reports to rep.
func New(pool *discovery.Pool, rep Reporter, s Settings, opts ...Option) *Prober {
	s = s.withDefaults()
	p := &Prober{pool: pool, rep: rep, s: s, log: zerolog.Nop(), client: &fasthttp.Client{
		Name:                "modelgate-health",
		ReadTimeout:         s.Timeout,
		WriteTimeout:        s.Timeout,
		MaxResponseBodySize: 64 << 10,
		MaxConnsPerHost:     2,
	}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Counts returns the probes sent and those that failed, since New.
func (p *Prober) Counts() (probes, failures uint64) { return p.probes.Load(), p.failures.Load() }

// Run probes every Interval until ctx is done; it returns ctx's error.
func (p *Prober) Run(ctx context.Context) error {
	tick := time.NewTicker(p.s.Interval)
	defer tick.Stop()
	for {
		p.Round(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Round probes every probed instance of the pool once and returns when all
// have answered or timed out.
func (p *Prober) Round(ctx context.Context) {
	sem := make(chan struct{}, p.s.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, svc := range p.pool.Snapshot().Services() {
		for _, in := range svc.Instances {
			path, ok := Path(in)
			if !ok {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Go(func() {
				defer func() { <-sem }()
				p.report(in, p.probe(in, path))
			})
		}
	}
}

// probe sends one GET to in's path and returns nil for a 2xx answer.
func (p *Prober) probe(in *discovery.Instance, path string) error {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	scheme := in.Scheme
	if scheme == "" {
		scheme = "http"
	}
	req.SetRequestURI(scheme + "://" + in.Addr() + path)
	req.Header.SetMethod(fasthttp.MethodGet)
	req.SetConnectionClose()
	if err := p.client.DoTimeout(req, resp, p.s.Timeout); err != nil {
		return err
	}
	if c := resp.StatusCode(); c < 200 || c > 299 {
		return statusError(c)
	}
	return nil
}

type statusError int

func (e statusError) Error() string { return "health: status " + strconv.Itoa(int(e)) }

func (p *Prober) report(in *discovery.Instance, err error) {
	p.probes.Add(1)
	if err != nil {
		p.failures.Add(1)
		p.log.Debug().Str("instance", in.ID()).Err(err).Msg("health probe failed")
	}
	p.rep.ReportHealth(in.ID(), err == nil)
}
