package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/signal"
	"reflect"
	"sync"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/router"
)

// configState says which config is in force, for /admin/config.
type configState struct {
	mu      sync.Mutex
	hash    string
	source  string
	loaded  time.Time
	lastErr string
	applied chan struct{} // closed at the next successful reload
	tried   chan struct{} // closed at the next reload, good or bad
	errors  *metrics.Counter
}

func newConfigState(set *metrics.Set, data []byte, source string) *configState {
	return &configState{hash: hashOf(data), source: source, loaded: time.Now(), applied: make(chan struct{}),
		tried: make(chan struct{}), errors: set.NewCounter("modelgate_config_reload_errors_total")}
}

func hashOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// changed returns channels closed at the next successful reload and at the
// next reload of any outcome.
func (s *configState) changed() (applied, tried <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied, s.tried
}

// signal closes the waiters' channels; the caller holds s.mu.
func (s *configState) signal(ok bool) {
	if ok {
		close(s.applied)
		s.applied = make(chan struct{})
	}
	close(s.tried)
	s.tried = make(chan struct{})
}

func (s *configState) ok(data []byte, source string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hash, s.source, s.loaded, s.lastErr = hashOf(data), source, time.Now(), ""
	s.signal(true)
}

// current is the hash of the config in force.
func (s *configState) current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hash
}

func (s *configState) failed(err error) {
	s.errors.Inc()
	s.mu.Lock()
	s.lastErr = err.Error()
	s.signal(false)
	s.mu.Unlock()
}

func (s *configState) serve(ctx *fasthttp.RequestCtx) {
	s.mu.Lock()
	v := map[string]any{"hash": s.hash, "source": s.source, "loaded_at": s.loaded.UTC().Format(time.RFC3339Nano)}
	if s.lastErr != "" {
		v["last_reload_error"] = s.lastErr
	}
	s.mu.Unlock()
	writeAdminJSON(ctx, v)
}

// applyRouting installs a new routing config, or keeps the old one and
// says why.
func (d *daemon) applyRouting(rc router.Config, data []byte, source string) error {
	if err := d.router.Reload(rc); err != nil {
		d.rejected(source, err)
		return err
	}
	d.cfgState.ok(data, source)
	d.log.Info().Str("source", source).Str("hash", hashOf(data)).Msg("config reloaded")
	return nil
}

func (d *daemon) rejected(source string, err error) {
	d.cfgState.failed(err)
	d.log.Error().Str("source", source).Err(err).Msg("config reload rejected, the previous config keeps serving")
}

// reloadFile re-reads the config file. Routing changes apply at once;
// changes to listeners or discovery need a restart and are reported.
func (d *daemon) reloadFile() error {
	data, err := os.ReadFile(d.path)
	if err != nil {
		d.rejected(d.path, err)
		return err
	}
	cfg, err := parseConfig(data)
	if err != nil {
		d.rejected(d.path, err)
		return err
	}
	if cfg.Listen != d.cfg.Listen || cfg.Admin.Listen != d.cfg.Admin.Listen || !reflect.DeepEqual(cfg.Discovery, d.cfg.Discovery) {
		d.log.Warn().Msg("listen, admin or discovery changed in the config file: they take effect at the next restart")
	}
	return d.applyRouting(cfg.Router, data, d.path)
}

// watchConfig reloads the file on SIGHUP and when its content changes,
// until ctx is done. With a Nacos config source, the file is not watched.
func (d *daemon) watchConfig(ctx context.Context) {
	if d.path == "" || d.cfg.ConfigSource != nil {
		return
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	t := time.NewTicker(d.fileCheck)
	defer t.Stop()
	last, _ := os.ReadFile(d.path)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = d.reloadFile()
		case <-t.C:
			cur, err := os.ReadFile(d.path)
			if err != nil || string(cur) == string(last) {
				continue
			}
			last = cur
			_ = d.reloadFile()
		}
	}
}
