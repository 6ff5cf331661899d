package degrade

import (
	"time"

	"github.com/rs/zerolog"

	"github.com/modelgate/modelgate/degrade/quota"
	"github.com/modelgate/modelgate/degrade/replycache"
)

// Option configures a Gate, a Controller or a Limiter: one option type for
// the package, each constructor reading the options that concern it (a
// Limiter only the clock).
type Option func(*options)

type options struct {
	clock      Clock
	log        zerolog.Logger
	th         Thresholds
	interval   time.Duration
	onChange   ChangeFunc
	quotaStore quota.Store
	cacheStore replycache.Store
}

func collect(opts []Option) options {
	o := options{clock: systemClock{}, log: zerolog.Nop(), th: DefaultThresholds(), interval: time.Second}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithClock sets the clock of ticks, pins, queue deadlines and signal
// windows (default the wall clock).
func WithClock(clk Clock) Option { return func(o *options) { o.clock = clk } }

// WithLogger sets the logger for tier changes, pins and quota store
// failures, one line each (default: none).
func WithLogger(l zerolog.Logger) Option { return func(o *options) { o.log = l } }

// WithThresholds sets a Controller's thresholds; zero fields take their
// defaults (DefaultThresholds). A Gate takes them from its Config instead.
func WithThresholds(t Thresholds) Option { return func(o *options) { o.th = t.withDefaults() } }

// WithInterval sets how often a Controller's Run observes every route
// (default 1s). A Gate takes it from its Config instead.
func WithInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.interval = d
		}
	}
}

// OnChange sets a function called once per change of a route's effective
// tier, for metrics and caps. It is called with the route's lock held, so
// calls for one route arrive in order; it must be quick and must not call
// Observe, Pin or Unpin for that route. Tier and Status are fine. A Gate
// calls it after applying its own cap policy.
func OnChange(fn ChangeFunc) Option { return func(o *options) { o.onChange = fn } }

// WithQuotaStore sets the Gate's store of consumer quotas (default: a
// quota.Memory of its own), such as a shared one for several gateways.
func WithQuotaStore(s quota.Store) Option { return func(o *options) { o.quotaStore = s } }

// WithCacheStore sets the Gate's reply cache store (default: a
// replycache.LRU sized by Config.Cache, rebuilt when a reload changes its
// size or TTLs). A store given here is kept across reloads; Config.Cache
// still says whether it is used and for which requests.
func WithCacheStore(s replycache.Store) Option { return func(o *options) { o.cacheStore = s } }
