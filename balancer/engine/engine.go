// Package engine is the engine-aware policy: it scores every available
// candidate on three things and picks the best, so that a request lands
// where the model server will answer it soonest.
//
//   - Prefix affinity: the prompt's leading content (balancer.Request.Prompt)
//     is cut into blocks of balancer.PrefixBlockSize bytes, hashed so that
//     block k's hash covers blocks 0..k, and looked up in an approximate,
//     bounded index per service of which instance most recently served each
//     block hash. The instance that served the longest prefix of the
//     prompt (found by binary search over the blocks) scores the share of
//     the prompt's blocks that prefix covers: a conversation's next turn
//     goes where its earlier turns are in the engine's KV cache.
//   - Queue: the instance's load — modelgate's in-flight count, plus, while
//     a background scraper keeps the engine's own waiting+running count
//     fresh (balancer.Balancer.SetEngineLoad), the engine's requests beyond
//     modelgate's own at the scrape — per unit of Nacos weight, lowest best.
//     The in-flight part is live, so a scrape taken while this replica's
//     own requests ran does not steer picks away after they end.
//   - Latency: the moving average of time to first token, lowest best.
//
// Each score is in [0, 1] — the matched share of the prompt's blocks,
// 1/(1+load), the fastest latency over the instance's (1 within 1.5×) — and
// weighed (default prefix 3, queue 2, latency 1): with the defaults, a
// conversation's home instance keeps it against an idle, faster one.
// Bounded load keeps a hot conversation from
// piling onto one instance: a candidate whose load would exceed LoadFactor
// (default 1.5) times the mean is passed over for the next best. The chosen
// instance is recorded in the index as serving the prompt's blocks.
//
// With no prefix match the prefix score is 0 everywhere and the pick is the
// least loaded candidate (ties broken at random, latency as above): with
// modelgate's live in-flight counts that spreads unique prompts at least as
// evenly as p2c's two random choices, which is why the engine's stale
// counts only add to them. When the home instance is below its weight in
// load and its prefix outscores anything the others could reach, it is
// chosen without scoring the others.
//
// Tags, splits, stickiness, max_concurrency and breakers apply exactly as
// with any policy: the balancer narrows the candidates, the policy chooses
// among them. Select takes no lock and does not allocate.
package engine

import "github.com/modelgate/modelgate/balancer"

// Name is the policy's name in configuration.
const Name = "engine"

// Settings are the policy's scorer weights and bounded load; see
// balancer.EngineSettings for each field and its default.
type Settings = balancer.EngineSettings

// Policy is the engine-aware policy. It is safe for concurrent use.
type Policy struct{ s Settings }

var _ balancer.Policy = (*Policy)(nil)

// New returns the policy with s, defaults filled (Settings.WithDefaults).
// Invalid settings (Settings.Validate) are replaced by the defaults; check
// them first where they come from configuration.
func New(s Settings) *Policy { return &Policy{s: s} }

// Name returns Name.
func (*Policy) Name() string { return Name }

// Build returns the set's selector, reading the prefix index of the set's
// service, which the balancer keeps across rebuilds.
func (p *Policy) Build(set balancer.Candidates) balancer.Selector {
	return balancer.EnginePolicy(p.s).Build(set)
}
