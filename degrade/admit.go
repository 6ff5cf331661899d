package degrade

import (
	"context"
	"errors"
	"time"

	"github.com/modelgate/modelgate/degrade/quota"
	"github.com/modelgate/modelgate/degrade/replycache"
)

// Request is what Admit needs to know of one request. The caller reads it
// from the request once (the router from its one pass over the body).
type Request struct {
	// Route is the route's name, as in Config.Routes. An unknown route is
	// admitted with no tier, queue or cache; quotas still apply.
	Route string
	// API is "chat", "completions" or "embeddings": the cache policy's
	// unit. Other values are never cached.
	API string
	// Consumer and Limits are the caller's quota; Limits zero: unlimited.
	Consumer string
	Limits   quota.Limits
	// PromptTokens is the prompt's estimated tokens.
	PromptTokens int
	// MaxTokens is what the request may generate (max_tokens or
	// max_completion_tokens); 0: the route's DefaultMaxTokens.
	MaxTokens int
	// Deterministic says the request sets temperature to 0 explicitly.
	Deterministic bool
	// Body is the request's body as the client sent it, for the cache key.
	// It is read during Admit only, and only when the cache could serve
	// or store the request.
	Body []byte
	// Scope is the tenant boundary of the request's cached replies (see
	// replycache.Key): the consumer, the instance tags, "" where replies
	// may be shared by everyone. It is needed only when CacheKeys says the
	// request will be keyed.
	Scope string
	// HasFallback says the route has fallback routes, where a shed request
	// goes instead of being refused.
	HasFallback bool
	// Start is when the request arrived (zero: now). Queue deadlines and
	// cache freshness count from it.
	Start time.Time
}

// Verdict is what Admit decided.
type Verdict uint8

// The verdicts.
const (
	// Forward: send the request upstream (after Decision.Waited in the
	// queue, if any).
	Forward Verdict = iota
	// ToFallback: the route sheds; send the request to its fallbacks only.
	ToFallback
	// Cached: answer with Decision.Entry.
	Cached
	// Shed: the route sheds and has no fallback: 503 with Retry-After.
	Shed
	// Queued: the queue turned the request away (Decision.Err is
	// ErrQueueFull, ErrQueueTimeout or the context's error): 503.
	Queued
	// OverQuota: the consumer is over its quota: 429 with Retry-After of
	// Decision.RetryAfter rounded up to whole seconds.
	OverQuota
)

// Decision is Admit's answer.
type Decision struct {
	Verdict Verdict
	// Degraded is the X-Modelgate-Degraded value: "shed", "queue",
	// "cache" or "" for a request served as usual.
	Degraded string
	// Entry and Fresh are the cached reply of a Cached verdict.
	Entry replycache.Entry
	Fresh bool
	// RetryAfter is the wait of an OverQuota verdict.
	RetryAfter time.Duration
	// Waited is the time the request spent in the queue.
	Waited time.Duration
	// Err is the queue's error of a Queued verdict.
	Err error
}

// Ticket is an admitted request's hold on the Gate: its queue slot, its
// quota reservation, its cache key. Settle it exactly once, from one
// goroutine, whatever the verdict. The zero Ticket settles as a no-op.
type Ticket struct {
	g        *Gate
	route    *gateRoute
	res      quota.Reservation
	limiter  *Limiter // holds one of its slots until Settle; nil when none
	key      [32]byte
	storable bool
	stale    *replycache.Entry
	settled  bool
}

// Outcome is how a request ended, for Ticket.Settle.
type Outcome struct {
	// Status is the status the client got.
	Status int
	// Attempts is the number of upstream attempts, over every route tried;
	// 0 means the request never reached upstream (refused, no instance,
	// or answered from the cache). Every attempt but the last failed.
	Attempts int
	// Failed says the last attempt failed (5xx, 429, transport error, a
	// stream cut short).
	Failed bool
	// FromCache says the reply came from the cache (a Cached verdict, or
	// Ticket.Stale after failed attempts).
	FromCache bool
	// Tokens is the prompt and completion tokens the request used, from
	// the upstream's usage (or an estimate when it reported none).
	Tokens int
	// TTFT is the time to first token, 0 when none was measured.
	TTFT time.Duration
	// Route is the route that answered when it is a fallback; "" is the
	// admitted route. The last attempt counts in its window.
	Route string
	// Reply, ContentType and Stream are a complete 200 reply to store, for
	// a ticket that is Storable; Settle copies Reply.
	Reply       []byte
	ContentType string
	Stream      bool
}

// Admit decides what happens to req; see Gate for the protocol. It may
// wait in the queue until the route's QueueTimeout or ctx's end.
func (g *Gate) Admit(ctx context.Context, req *Request) (Decision, Ticket) {
	st := g.state.Load()
	now := req.Start
	if now.IsZero() {
		now = g.opts.clock.Now()
	}
	t := Ticket{g: g, route: st.routes[req.Route]}
	r := t.route
	if !req.Limits.Unlimited() && req.Consumer != "" {
		maxTok := req.MaxTokens
		if maxTok <= 0 {
			maxTok = DefaultMaxTokens
			if r != nil {
				maxTok = r.DefaultMaxTokens
			}
		}
		res, retry, err := g.quotas.Reserve(ctx, req.Consumer, req.Limits, req.PromptTokens+maxTok, now)
		switch {
		case errors.Is(err, quota.ErrExceeded):
			return Decision{Verdict: OverQuota, RetryAfter: retry}, Ticket{}
		case err != nil:
			g.opts.log.Warn().Err(err).Msg("quota store failed; letting the request in")
		default:
			t.res = res
		}
	}
	if r == nil {
		return Decision{}, t
	}
	tier := TierNormal
	if !st.cfg.Disabled {
		tier = g.ctl.Tier(r.Name)
	}
	if tier >= TierShed && r.Class == Sheddable {
		if req.HasFallback {
			return Decision{Verdict: ToFallback, Degraded: "shed"}, t
		}
		return Decision{Verdict: Shed, Degraded: "shed"}, t
	}
	if st.cache != nil {
		if d, ok := t.lookup(ctx, st, req, tier, now); ok {
			return d, t
		}
	}
	if st.cfg.Disabled {
		return Decision{}, t
	}
	waited, err := r.limiter.acquire(ctx, r.Class, now.Add(r.QueueTimeout))
	if err != nil {
		if t.stale != nil {
			return Decision{Verdict: Cached, Degraded: "cache", Entry: *t.stale}, t
		}
		return Decision{Verdict: Queued, Degraded: "queue", Err: err}, t
	}
	t.limiter = r.limiter
	d := Decision{Waited: waited}
	if waited > 0 {
		d.Degraded = "queue"
	}
	return d, t
}

// lookup keys a request the cache policy allows and looks it up: it
// reports a Cached decision when the entry may serve now, and otherwise
// keeps a stale entry for stale-if-error.
func (t *Ticket) lookup(ctx context.Context, st *gateState, req *Request, tier Tier, now time.Time) (Decision, bool) {
	allowed := st.rules.Allows(req.API, req.Deterministic)
	if !st.keys(req.API, allowed) {
		return Decision{}, false // never served from the cache: do not key it
	}
	key, ok := replycache.Key(req.Scope, req.API, req.Body)
	if !ok {
		return Decision{}, false
	}
	t.key, t.storable = key, true
	e, fresh, hit := st.cache.Get(ctx, key, now)
	switch {
	case !hit:
		return Decision{}, false
	case fresh && allowed:
		return Decision{Verdict: Cached, Degraded: "cache", Entry: e, Fresh: true}, true
	case tier == TierCache:
		return Decision{Verdict: Cached, Degraded: "cache", Entry: e, Fresh: fresh}, true
	case !st.cfg.Disabled:
		t.stale = &e
	}
	return Decision{}, false
}

// CacheKeys reports whether Admit would key a request to api (deterministic:
// it sets temperature 0) under the configuration in force: the cache is on
// and its policy could serve or store the request. A caller computes
// Request.Scope only then.
func (g *Gate) CacheKeys(api string, deterministic bool) bool {
	st := g.state.Load()
	return st.cache != nil && st.keys(api, st.rules.Allows(api, deterministic))
}

// keys reports whether a request to api, allowed or not by the fresh
// rules, is keyed.
func (st *gateState) keys(api string, allowed bool) bool {
	switch api {
	case "chat", "completions", "embeddings":
		return allowed || st.staleAll
	}
	return false
}

// Storable reports whether Settle would store the request's reply: the
// caller keeps a stream's events only then.
func (t *Ticket) Storable() bool { return t.storable }

// Stale returns a stale reply that may answer the request when every
// upstream attempt has failed.
func (t *Ticket) Stale() (replycache.Entry, bool) {
	if t.stale == nil {
		return replycache.Entry{}, false
	}
	return *t.stale, true
}

// Settle ends the request: it frees its queue slot, records its attempts
// in the route's window, settles its quota reservation and stores a
// complete 200 reply. Later calls do nothing.
func (t *Ticket) Settle(o Outcome) {
	if t.settled || t.g == nil {
		return
	}
	t.settled = true
	if t.limiter != nil {
		t.limiter.release()
	}
	switch {
	case o.FromCache:
		t.res.Commit(0) // the request counts, no tokens do
	case o.Attempts == 0:
		t.res.Cancel() // refused or failed before upstream
	default:
		t.res.Commit(o.Tokens)
	}
	now := t.g.opts.clock.Now()
	if r := t.route; r != nil && o.Attempts > 0 {
		failures := o.Attempts - 1
		last := r
		if o.Route != "" && o.Route != r.Name {
			last = t.g.state.Load().routes[o.Route]
		}
		if o.FromCache {
			failures = o.Attempts // every attempt failed, then the stale reply
			last = nil
		}
		for range failures {
			r.window.Record(now, true, 0)
		}
		if last != nil {
			last.window.Record(now, o.Failed, o.TTFT)
			if !o.Failed && !last.usable.Load() {
				last.usable.Store(true) // it answered: it has had a usable instance
			}
		}
	}
	if t.storable && !o.FromCache && o.Status == 200 && o.Reply != nil {
		if cache := t.g.state.Load().cache; cache != nil {
			cache.Set(context.Background(), t.key, replycache.Entry{Status: 200, ContentType: o.ContentType,
				Body: append([]byte(nil), o.Reply...), Stream: o.Stream, Stored: now})
		}
	}
}
