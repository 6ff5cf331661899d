package engine_test

import (
	"fmt"
	"hash/maphash"
	"slices"
	"testing"
	"time"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/balancer/engine"
	"github.com/modelgate/modelgate/balancer/internal/lbtest"
	"github.com/modelgate/modelgate/balancer/p2c"
	"github.com/modelgate/modelgate/discovery"
)

// simEngine is one model server with the mock's economics
// (internal/mockllm EngineConfig), in virtual time: a request waits for one
// of slots, then pays prefill for each prompt token (4 bytes) not in its
// prefix cache (64-byte blocks, chained) before its first token, then
// decode for each output token.
type simEngine struct {
	id      string
	slots   int
	running int
	waiting []*simReq
	cache   map[uint64]bool
	served  int
}

type simReq struct {
	prompt  []byte
	arrived time.Duration
	ttft    time.Duration
	picked  balancer.Picked
	on      *simEngine
	client  int
}

type simEvent struct {
	at  time.Duration
	seq int
	req *simReq // finishes at at
}

// simConfig is one simulated workload: clients send prompts back to back
// (a closed loop), each prompt once, over n engines.
type simConfig struct {
	n, slots, clients int
	prefill, decode   time.Duration
	outTokens         int
	scrape            time.Duration // engine metrics pushed every scrape; 0 for none
	prompts           [][]byte
}

type simResult struct {
	wall   time.Duration
	served []int // per engine
	ttft   time.Duration
}

func (r simResult) String() string {
	return fmt.Sprintf("wall %v, mean TTFT %v, served %v", r.wall, r.ttft, r.served)
}

var simSeed = maphash.MakeSeed()

// prefill caches p's blocks on e and returns its tokens not cached before.
func (e *simEngine) prefill(p []byte) int {
	const block = 64
	h, cached, missed := uint64(0), 0, false
	for i := range len(p) / block {
		h = maphash.Bytes(simSeed, p[i*block:(i+1)*block]) ^ h*0x9e3779b97f4a7c15
		if e.cache[h] && !missed {
			cached++
		} else {
			missed = true
		}
		e.cache[h] = true
	}
	return (len(p)+3)/4 - cached*block/4
}

// simulate runs cfg through policy pol, deterministically: the balancer
// runs on a virtual clock and a seeded random source.
func simulate(t *testing.T, cfg simConfig, pol balancer.Policy, seed uint64) simResult {
	t.Helper()
	clock := lbtest.NewClock()
	start := clock.Now()
	now := func() time.Duration { return clock.Now().Sub(start) }
	ins := make([]*discovery.Instance, cfg.n)
	engines := map[string]*simEngine{}
	var order []*simEngine
	for i := range ins {
		ins[i] = lbtest.Inst(i+1, 1)
		e := &simEngine{id: lbtest.ID(i + 1), slots: cfg.slots, cache: map[uint64]bool{}}
		engines[e.id] = e
		order = append(order, e)
	}
	b := balancer.New(lbtest.Pool(ins...), []balancer.Route{{Name: "chat", Service: lbtest.Key, Policy: pol}},
		balancer.WithClock(clock.Now), balancer.WithRand(lbtest.Rand(seed)))
	var (
		events []simEvent
		seq    int
		next   int
		ttfts  time.Duration
		done   int
	)
	begin := func(r *simReq) { // r takes a slot now
		e := r.on
		e.running++
		pre := time.Duration(e.prefill(r.prompt)) * cfg.prefill
		ttft := now() - r.arrived + pre
		ttfts += ttft
		seq++
		events = append(events, simEvent{at: now() + pre + time.Duration(cfg.outTokens)*cfg.decode, seq: seq, req: r})
		r.ttft = ttft
	}
	send := func(client int) {
		if next == len(cfg.prompts) {
			return
		}
		r := &simReq{prompt: cfg.prompts[next], arrived: now(), client: client}
		next++
		p, err := b.Pick(&balancer.Request{Route: "chat", Prompt: r.prompt})
		if err != nil {
			t.Fatal(err)
		}
		r.picked, r.on = p, engines[p.Instance.ID()]
		r.on.served++
		if r.on.running < r.on.slots {
			begin(r)
		} else {
			r.on.waiting = append(r.on.waiting, r)
		}
	}
	for c := range cfg.clients {
		send(c)
	}
	nextScrape := cfg.scrape
	for done < len(cfg.prompts) {
		i := slices.IndexFunc(events, func(ev simEvent) bool {
			for _, o := range events {
				if o.at < ev.at || (o.at == ev.at && o.seq < ev.seq) {
					return false
				}
			}
			return true
		})
		ev := events[i]
		if cfg.scrape > 0 && nextScrape <= ev.at {
			clock.Advance(nextScrape - now())
			nextScrape += cfg.scrape
			for _, e := range order {
				b.SetEngineLoad(e.id, balancer.EngineLoad{Waiting: int64(len(e.waiting)), Running: int64(e.running)})
			}
			continue
		}
		events = slices.Delete(events, i, i+1)
		clock.Advance(ev.at - now())
		r := ev.req
		r.picked.Done(balancer.Result{Status: 200, TTFT: r.ttft})
		done++
		e := r.on
		e.running--
		if len(e.waiting) > 0 {
			w := e.waiting[0]
			e.waiting = e.waiting[1:]
			begin(w)
		}
		send(r.client)
	}
	res := simResult{wall: now(), ttft: ttfts / time.Duration(len(cfg.prompts))}
	for _, e := range order {
		res.served = append(res.served, e.served)
	}
	return res
}

// uniquePrompts returns n distinct chat prompts of about 6 KB, each with
// the given shared preamble first.
func uniquePrompts(n int, preamble string) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		p := conversation(100_000+i, 0)
		out[i] = append([]byte(`[{"role":"system","content":"`+preamble+`"},`), p[1:]...)
	}
	return out
}

// On unique prompts nothing matches: the engine policy must spread them at
// least as well as p2c and take no longer. Simulated with the mock's
// economics, 2 and 3 engines of 2 slots, as many clients as slots, with and
// without engine metrics (scraped every 500 ms, so usually stale), and with
// prompts that share a preamble shorter than a block and one longer (a
// common system prompt, which does match: the index must not herd them).
func TestUniquePromptsNoWorseThanP2C(t *testing.T) {
	for _, n := range []int{2, 3} {
		for _, scrape := range []time.Duration{0, 500 * time.Millisecond} {
			for _, pre := range []struct {
				name, text string
			}{{"no-preamble", ""}, {"short-preamble", "You are a helpful assistant."},
				{"shared-system-prompt", fmt.Sprintf("%0600d", 0)}} {
				t.Run(fmt.Sprintf("n=%d/scrape=%v/%s", n, scrape, pre.name), func(t *testing.T) {
					cfg := simConfig{n: n, slots: 2, clients: 2 * n, prefill: 50 * time.Microsecond,
						decode: 5 * time.Millisecond, outTokens: 16, scrape: scrape, prompts: uniquePrompts(240, pre.text)}
					var pw, ew time.Duration
					for seed := range uint64(5) {
						pr := simulate(t, cfg, p2c.New(), seed)
						er := simulate(t, cfg, engine.New(engine.Settings{}), seed)
						t.Logf("seed %d: p2c %v; engine %v", seed, pr, er)
						pw += pr.wall
						ew += er.wall
						for i, s := range er.served {
							if want := len(cfg.prompts) / n; s < want*9/10 || s > want*11/10 {
								t.Errorf("seed %d: engine %d served %d of %d prompts, want %d ± 10 %%", seed, i+1, s, len(cfg.prompts), want)
							}
						}
						if er.wall > pr.wall*105/100 {
							t.Errorf("seed %d: engine wall %v, p2c %v: more than 5 %% slower", seed, er.wall, pr.wall)
						}
					}
					t.Logf("total wall over 5 seeds: p2c %v, engine %v (%+.1f %%)", pw, ew, 100*(float64(ew)/float64(pw)-1))
				})
			}
		}
	}
}
