package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/modelgate/modelgate/degrade/quota"
)

// Fallback is what the quota store does while Redis does not answer.
type Fallback string

const (
	// FallbackLocal enforces each consumer's limits per process, as
	// without Redis: N replicas then grant up to N times the quota. The
	// default.
	FallbackLocal Fallback = "local"
	// FallbackOpen admits every request (fail open).
	FallbackOpen Fallback = "open"
	// FallbackClosed refuses every limited request with a one-second
	// Retry-After (fail closed).
	FallbackClosed Fallback = "closed"
)

// QuotaSettings tune a Quota. Zero values take the defaults.
type QuotaSettings struct {
	Prefix   string        // key prefix; default "modelgate:quota:"
	Timeout  time.Duration // per call; default 50ms
	Fallback Fallback      // default FallbackLocal
}

// Option sets an optional dependency of a Quota or a Cache.
type Option func(*deps)

type deps struct {
	log     zerolog.Logger
	metrics *metrics.Set
}

// WithLogger sets the logger of outages and recoveries, one line each
// (default: none).
func WithLogger(l zerolog.Logger) Option { return func(d *deps) { d.log = l } }

// WithMetrics sets where the store's up gauge and fallback counter go
// (default: nowhere).
func WithMetrics(set *metrics.Set) Option { return func(d *deps) { d.metrics = set } }

func collect(opts []Option) deps {
	d := deps{log: zerolog.Nop()}
	for _, o := range opts {
		o(&d)
	}
	return d
}

// Quota is a quota.Store in Redis. Each consumer is one hash holding its
// two buckets (level and last refill of requests and of tokens), changed
// only by Lua scripts that refill, check and take in one step on the
// server, with the server's clock. Keys expire after two idle minutes,
// when their buckets would be full again. It is safe for concurrent use.
type Quota struct {
	rdb    redis.UniversalClient
	opts   QuotaSettings
	local  *quota.Memory
	health *health
}

var _ quota.Store = (*Quota)(nil)

// NewQuota returns a Quota over rdb.
func NewQuota(rdb redis.UniversalClient, opts QuotaSettings, with ...Option) (*Quota, error) {
	if opts.Prefix == "" {
		opts.Prefix = "modelgate:quota:"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 50 * time.Millisecond
	}
	switch opts.Fallback {
	case "":
		opts.Fallback = FallbackLocal
	case FallbackLocal, FallbackOpen, FallbackClosed:
	default:
		return nil, fmt.Errorf("redisstore: quota fallback %q: want local, open or closed", opts.Fallback)
	}
	return &Quota{rdb: rdb, opts: opts, local: quota.NewMemory(), health: newHealth("quota", collect(with))}, nil
}

// refill and the bucket arithmetic are those of quota's in-process buckets:
// size tokens a minute, continuously, up to size.
const bucketLua = `
local now
do local t = redis.call('TIME'); now = tonumber(t[1]) + tonumber(t[2]) / 1e6 end
local function refill(level, last, size)
  if not level or not last then return size, now end
  level, last = tonumber(level), tonumber(last)
  if now > last then
    level = math.min(size, level + size * (now - last) / 60)
    last = now
  end
  return math.min(level, size), last
end
local function save(key, v)
  local names, args = {'rl', 'rt', 'tl', 'tt'}, {}
  for i = 1, 4 do
    if v[i] then args[#args + 1] = names[i]; args[#args + 1] = tostring(v[i]) end
  end
  if #args > 0 then redis.call('HSET', key, unpack(args)) end
  redis.call('PEXPIRE', key, 120000)
end
`

// takeScript: KEYS[1] the consumer; ARGV rpm, tpm, tokens. Returns 0 when
// taken, else the milliseconds until it would fit.
var takeScript = redis.NewScript(bucketLua + `
local rpm, tpm, need = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 'rl', 'rt', 'tl', 'tt')
local wait = 0
local function w(level, size, n)
  n = math.min(n, size)
  if level >= n then return 0 end
  return math.ceil((n - level) / size * 60000)
end
if rpm > 0 then v[1], v[2] = refill(v[1], v[2], rpm); wait = math.max(wait, w(v[1], rpm, 1)) end
if tpm > 0 then v[3], v[4] = refill(v[3], v[4], tpm); wait = math.max(wait, w(v[3], tpm, need)) end
if wait == 0 then
  if rpm > 0 then v[1] = v[1] - 1 end
  if tpm > 0 then v[3] = v[3] - need end
end
save(KEYS[1], v)
return wait
`)

// giveScript: KEYS[1] the consumer; ARGV rpm, tpm, requests, tokens.
var giveScript = redis.NewScript(bucketLua + `
local rpm, tpm, rq, tk = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local v = redis.call('HMGET', KEYS[1], 'rl', 'rt', 'tl', 'tt')
local function add(level, size, n)
  if n >= 0 then return math.min(size, level + n) end
  return math.max(level + n, math.min(level, -size))
end
if rpm > 0 then
  if not v[1] then v[1], v[2] = rpm, now end
  v[1] = add(tonumber(v[1]), rpm, rq)
end
if tpm > 0 then
  if not v[3] then v[3], v[4] = tpm, now end
  v[3] = add(tonumber(v[3]), tpm, tk)
end
save(KEYS[1], v)
return 0
`)

// Take implements quota.Store. now is used only by the fallback: Redis
// refills by its own clock, the same for every replica.
func (q *Quota) Take(_ context.Context, consumer string, lim quota.Limits, tokens int, now time.Time) (time.Duration, bool, error) {
	ctx, cancel := callContext(q.opts.Timeout)
	defer cancel()
	ms, err := takeScript.Run(ctx, q.rdb, []string{q.opts.Prefix + consumer}, lim.RPM, lim.TPM, tokens).Int64()
	if err != nil {
		q.health.failed(err)
		switch q.opts.Fallback {
		case FallbackOpen:
			return 0, true, nil
		case FallbackClosed:
			return time.Second, false, nil
		}
		return q.local.Take(ctx, consumer, lim, tokens, now)
	}
	q.health.ok()
	if ms > 0 {
		return time.Duration(ms) * time.Millisecond, false, nil
	}
	return 0, true, nil
}

// Give implements quota.Store. While Redis is down it settles with the
// fallback's buckets.
func (q *Quota) Give(_ context.Context, consumer string, lim quota.Limits, requests, tokens int) error {
	ctx, cancel := callContext(q.opts.Timeout)
	defer cancel()
	if err := giveScript.Run(ctx, q.rdb, []string{q.opts.Prefix + consumer}, lim.RPM, lim.TPM, requests, tokens).Err(); err != nil {
		q.health.failed(err)
		if q.opts.Fallback == FallbackLocal {
			return q.local.Give(ctx, consumer, lim, requests, tokens)
		}
		return nil
	}
	q.health.ok()
	return nil
}
