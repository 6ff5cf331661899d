package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
	"github.com/valyala/fasthttp/pprofhandler"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/degrade"
	"github.com/modelgate/modelgate/degrade/redisstore"
	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/discovery/nacos"
	"github.com/modelgate/modelgate/discovery/static"
	"github.com/modelgate/modelgate/router"
)

// withPprof serves Go's profiles under /debug/pprof/ on the admin listener
// (behind the admin token like every admin path), in front of next:
//
//	go tool pprof -seconds 10 http://127.0.0.1:8481/debug/pprof/profile
func withPprof(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	prefix := []byte("/debug/pprof/")
	index := fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Index) // its links are relative to the prefix
	return func(ctx *fasthttp.RequestCtx) {
		switch path := ctx.Path(); {
		case bytes.Equal(path, prefix):
			index(ctx)
		case bytes.HasPrefix(path, prefix):
			pprofhandler.PprofHandler(ctx)
		default:
			next(ctx)
		}
	}
}

// shutdownGrace is how long in-flight requests and streams may run on after
// a shutdown signal.
const shutdownGrace = 30 * time.Second

// daemon is one running modelgate: a source, a pool, a router and two
// listeners.
type daemon struct {
	cfg       *Config
	path      string        // the config file; "" when the config came from code
	fileCheck time.Duration // how often the config file is checked for changes
	cfgState  *configState
	log       zerolog.Logger
	metrics   *metrics.Set
	pool      *discovery.Pool
	source    discovery.Source
	router    *router.Router
	api       *fasthttp.Server
	admin     *fasthttp.Server
	apiLn     net.Listener
	adminLn   net.Listener
	closers   []func()
	naming    *nacos.SDKClient // the process's one naming client, if discovery is Nacos
	nacosCfg  *nacos.ConfigClient
	canaryCfg *nacos.ConfigClient // the canary_sync entry's client, if any
	self      *selfRegistration
}

// newDaemon builds a daemon from cfg, read from path (raw is its content,
// for /admin/config; path is "" for a config built in code). src, when not
// nil, replaces the source named in cfg (the demo's embedded pool).
func newDaemon(cfg *Config, path string, raw []byte, src discovery.Source, log zerolog.Logger) (*daemon, error) {
	if err := cfg.Admin.exposed(); err != nil {
		return nil, err
	}
	d := &daemon{cfg: cfg, path: path, fileCheck: 2 * time.Second, log: log, metrics: metrics.NewSet()}
	d.cfgState = newConfigState(d.metrics, raw, path)
	d.pool = discovery.NewPool(discovery.WithLogger(log))
	if src == nil {
		var err error
		if src, err = d.newSource(cfg); err != nil {
			return nil, err
		}
	}
	d.source = src
	canaryOpts, err := d.canarySync()
	if err != nil {
		d.close()
		return nil, err
	}
	rt, err := router.New(d.pool, cfg.Router, router.WithLogger(log), router.WithBalancerOptions(balancer.WithLogger(log)),
		router.WithMetrics(d.metrics), router.WithAccessLogWriter(os.Stdout), router.WithGateOptions(d.sharedStores(cfg)...),
		router.WithCanaryOptions(canaryOpts...))
	if err != nil {
		d.close()
		return nil, err
	}
	d.router = rt
	if err := d.loadNacosConfig(); err != nil {
		d.close()
		return nil, err
	}
	if err := d.loadCanarySync(); err != nil {
		d.close()
		return nil, err
	}
	d.api = &fasthttp.Server{
		Handler:               rt.Handler,
		ErrorHandler:          rt.ErrorHandler,
		Logger:                router.ServerLogger(log),
		Name:                  "modelgate",
		MaxRequestBodySize:    rt.MaxBodySize(),
		ReadBufferSize:        rt.MaxHeaderSize(),
		ReadTimeout:           60 * time.Second, // reading one request; never the reply
		IdleTimeout:           2 * time.Minute,
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
	}
	d.admin = &fasthttp.Server{
		Handler: router.GuardAdmin(cfg.Admin.hash, withPprof(rt.AdminHandler(map[string]fasthttp.RequestHandler{"/admin/config": d.cfgState.serve},
			func(w io.Writer) { metrics.WriteProcessMetrics(w) }))),
		ErrorHandler: router.ErrorHandler, Logger: router.ServerLogger(log),
		Name: "modelgate-admin", NoDefaultServerHeader: true, CloseOnShutdown: true,
	}
	if d.apiLn, err = net.Listen("tcp", cfg.Listen); err != nil {
		d.close()
		return nil, fmt.Errorf("api listener: %w", err)
	}
	if d.adminLn, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
		d.close()
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	return d, nil
}

// sharedStores returns the gate options that put quotas and the reply
// cache in Redis, when the config names one.
func (d *daemon) sharedStores(cfg *Config) []degrade.Option {
	r := cfg.Redis
	if r == nil {
		return nil
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 50 * time.Millisecond
	}
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr, Username: r.Username, Password: r.Password, DB: r.DB,
		DialTimeout: time.Second, ReadTimeout: timeout, WriteTimeout: timeout, MaxRetries: -1})
	d.closers = append(d.closers, func() { _ = rdb.Close() })
	var opts []degrade.Option
	if r.Quotas == nil || *r.Quotas {
		q, _ := redisstore.NewQuota(rdb, redisstore.QuotaSettings{Timeout: timeout, Fallback: redisstore.Fallback(r.QuotaFallback)},
			redisstore.WithLogger(d.log), redisstore.WithMetrics(d.metrics)) // the fallback was validated with the config
		opts = append(opts, degrade.WithQuotaStore(q))
	}
	if r.Cache == nil || *r.Cache {
		cc := cfg.Router.Degrade.Cache
		opts = append(opts, degrade.WithCacheStore(redisstore.NewCache(rdb, redisstore.CacheSettings{Timeout: timeout,
			FreshTTL: cc.FreshTTL, StaleTTL: cc.StaleTTL}, redisstore.WithLogger(d.log), redisstore.WithMetrics(d.metrics))))
	}
	return opts
}

func nacosClientConfig(n *NacosConfig) nacos.ClientConfig {
	c := nacos.ClientConfig{
		Servers: n.Servers, Namespace: n.Namespace, Username: n.Username, Password: n.Password,
		AccessKey: n.AccessKey, SecretKey: n.SecretKey,
		CacheDir: filepath.Join(n.CacheDir, "cache"), LogDir: filepath.Join(n.CacheDir, "log"),
	}
	if n.TLS != nil {
		c.TLS = &nacos.TLSConfig{CAFile: n.TLS.CAFile, ServerName: n.TLS.ServerName}
	}
	return c
}

func (d *daemon) newSource(cfg *Config) (discovery.Source, error) {
	if cfg.Discovery.Static != "" {
		return static.NewFile(cfg.Discovery.Static, static.WithLogger(d.log)), nil
	}
	n := cfg.Discovery.Nacos
	client, err := nacos.Dial(nacosClientConfig(n))
	if err != nil {
		return nil, err
	}
	d.naming = client
	d.closers = append(d.closers, client.Close)
	snapshot := n.Snapshot
	if snapshot == "off" {
		snapshot = ""
	}
	return nacos.NewWatcher(client, nacos.Settings{
		Groups: n.Groups, ListInterval: n.ListInterval, ReconcileInterval: n.ReconcileInterval,
		ReconcileRate: n.ReconcileRate, Empty: nacos.EmptyPolicy(n.EmptyPolicy), EmptyGrace: n.EmptyGrace,
		SnapshotPath: snapshot,
	}, nacos.WithLogger(d.log), nacos.WithMetrics(d.metrics))
}

// run serves until ctx is done, then shuts down gracefully: the listeners
// stop accepting, in-flight requests and streams get shutdownGrace to end.
func (d *daemon) run(ctx context.Context) error {
	defer d.close()
	bg, stopBg := context.WithCancel(context.Background())
	defer stopBg()
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	wg.Go(func() { errc <- ignoreCanceled(d.source.Run(bg, d.pool)) })
	wg.Go(func() { errc <- ignoreCanceled(d.router.Run(bg)) })
	wg.Go(func() { errc <- d.api.Serve(d.apiLn) })
	wg.Go(func() { errc <- d.admin.Serve(d.adminLn) })
	wg.Go(func() { d.watchConfig(bg) })
	wg.Go(func() { d.runNacosConfig(bg) })
	wg.Go(func() { d.runCanarySync(bg) })
	if d.canaryCfg != nil {
		host, _ := os.Hostname()
		d.router.Canary().SetReplica(host + " " + d.apiLn.Addr().String())
	}
	d.log.Info().Str("api", d.apiLn.Addr().String()).Str("admin", d.adminLn.Addr().String()).
		Str("version", versionString()).Int("routes", len(d.cfg.Router.Routes)).Msg("modelgate serving")
	if d.cfg.Register != nil && d.naming != nil {
		self, err := register(d.naming, d.cfg.Register, d.apiLn.Addr())
		if err != nil {
			d.log.Error().Err(err).Msg("self-registration failed; serving anyway")
		} else {
			d.self = self
			d.log.Info().Str("service", d.cfg.Register.Group+"@@"+d.cfg.Register.Service).Msg("registered in nacos")
		}
	}

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc: // a component failed on its own
		if err != nil {
			d.log.Error().Err(err).Msg("shutting down")
		}
	}
	if d.self != nil { // first leave the upstream gateway's pool, then drain
		if err := d.self.deregister(); err != nil {
			d.log.Warn().Err(err).Msg("nacos deregistration failed")
		}
	}
	drainStart := time.Now()
	d.log.Info().Dur("grace", shutdownGrace).Msg("draining: listeners closed, in-flight requests and streams may finish")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if serr := d.api.ShutdownWithContext(sctx); serr != nil {
		d.log.Warn().Err(serr).Msg("api shutdown")
	}
	_ = d.admin.ShutdownWithContext(sctx)
	// Shutdown closes only the listeners Serve has registered; one whose
	// goroutine has not run yet (a stop during start) would serve on, and
	// wg.Wait would never return. Closed here, its Serve returns at once.
	_ = d.apiLn.Close()
	_ = d.adminLn.Close()
	stopBg()
	wg.Wait()
	d.log.Info().Dur("drained_in", time.Since(drainStart)).Msg("modelgate stopped")
	return err
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (d *daemon) close() {
	for _, c := range d.closers {
		c()
	}
	d.closers = nil
}

func newLogger(level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("log_level: %w", err)
	}
	return zerolog.New(os.Stderr).Level(lvl).With().Timestamp().Logger(), nil
}

// loadNacosConfig takes the routing config from Nacos Config when the
// config names it: the current entry now (if there is one); runNacosConfig
// then applies every change.
func (d *daemon) loadNacosConfig() error {
	cs := d.cfg.ConfigSource
	if cs == nil {
		return nil
	}
	client, err := nacos.DialConfig(nacosClientConfig(d.cfg.Discovery.Nacos))
	if err != nil {
		return err
	}
	d.nacosCfg = client
	d.closers = append(d.closers, client.Close)
	cur, err := client.Get(cs.Nacos.DataID, cs.Nacos.Group)
	if err != nil {
		return err
	}
	if cur == "" {
		d.log.Warn().Str("source", d.nacosSource()).Msg("no routing config in Nacos yet; serving the file's until one is published")
		return nil
	}
	d.applyNacos(cur)
	return nil
}

func (d *daemon) nacosSource() string {
	return "nacos:" + d.cfg.ConfigSource.Nacos.Group + "/" + d.cfg.ConfigSource.Nacos.DataID
}

func (d *daemon) applyNacos(content string) {
	if hashOf([]byte(content)) == d.cfgState.current() {
		return
	}
	rc, err := parseRouting([]byte(content), d.cfg.Router.DefaultGroup)
	if err != nil {
		d.rejected(d.nacosSource(), err)
		return
	}
	_ = d.applyRouting(rc, []byte(content), d.nacosSource())
}

// runNacosConfig applies every change of the Nacos Config entry until ctx
// is done.
func (d *daemon) runNacosConfig(ctx context.Context) {
	if d.nacosCfg == nil {
		return
	}
	cs := d.cfg.ConfigSource.Nacos
	d.nacosCfg.Watch(ctx, cs.DataID, cs.Group, time.Second, d.applyNacos)
}

func writeAdminJSON(ctx *fasthttp.RequestCtx, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}
