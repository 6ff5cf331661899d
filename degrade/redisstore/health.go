package redisstore

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
)

// health tracks whether Redis answers, logging each change once and
// counting the calls that fell back. It is safe for concurrent use.
type health struct {
	what      string // "quota" or "cache", in log lines and metric labels
	log       zerolog.Logger
	down      atomic.Bool
	fallbacks *metrics.Counter // nil without a metric set
}

func newHealth(what string, d deps) *health {
	h := &health{what: what, log: d.log}
	if set := d.metrics; set != nil {
		h.fallbacks = set.NewCounter(`modelgate_redis_fallbacks_total{store="` + what + `"}`)
		set.NewGauge(`modelgate_redis_up{store="`+what+`"}`, func() float64 {
			if h.down.Load() {
				return 0
			}
			return 1
		})
	}
	return h
}

// failed records a call that Redis did not answer.
func (h *health) failed(err error) {
	if h.fallbacks != nil {
		h.fallbacks.Inc()
	}
	if !h.down.Swap(true) {
		h.log.Error().Err(err).Str("store", h.what).Msg("redis unreachable: falling back to per-process state")
	}
}

// ok records a call that Redis answered.
func (h *health) ok() {
	if h.down.Load() && h.down.Swap(false) {
		h.log.Info().Str("store", h.what).Msg("redis answers again: shared state resumed")
	}
}

// callContext bounds one Redis call by its own timeout. The caller's
// context is not used: the router passes a fasthttp RequestCtx, which must
// not be touched once its handler has returned, and a derived context
// would watch it from another goroutine.
func callContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), timeout)
}
