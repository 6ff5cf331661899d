package engine_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/balancer/engine"
	"github.com/modelgate/modelgate/balancer/internal/lbtest"
	"github.com/modelgate/modelgate/discovery"
)

// pool returns a balancer with n instances and a route "chat" using the
// engine policy with s.
func pool(n int, s engine.Settings, opts ...balancer.Option) *balancer.Balancer {
	ins := make([]*discovery.Instance, n)
	for i := range ins {
		ins[i] = lbtest.Inst(i+1, 1, "zone", []string{"a", "b"}[i%2])
	}
	return balancer.New(lbtest.Pool(ins...),
		[]balancer.Route{{Name: "chat", Service: lbtest.Key, Policy: engine.New(s)}}, opts...)
}

// conversation returns the messages of conversation c after turn t: a
// distinct ~6 KB system prompt, then t user/assistant exchanges, as a JSON
// array like the one a client sends.
func conversation(c, t int) []byte {
	var sb strings.Builder
	fmt.Fprintf(&sb, `[{"role":"system","content":"conversation %d: %s"}`, c, strings.Repeat(fmt.Sprintf("document %d line. ", c), 300))
	for i := range t {
		fmt.Fprintf(&sb, `,{"role":"user","content":"question %d of turn %d"},{"role":"assistant","content":"%s"}`,
			c, i, strings.Repeat("answer ", 20))
	}
	sb.WriteString(`,{"role":"user","content":"next"}]`)
	return []byte(sb.String())
}

func TestTurnsOfAConversationStayOnItsInstance(t *testing.T) {
	b := pool(4, engine.Settings{})
	home := map[int]string{}
	first := map[string]int{}
	// The first turns of 16 conversations arrive together: nothing
	// matches anywhere yet, so load spreads them.
	var held []balancer.Picked
	for c := range 16 {
		p, err := b.Pick(&balancer.Request{Route: "chat", Prompt: conversation(c, 0)})
		if err != nil {
			t.Fatal(err)
		}
		home[c] = p.Instance.ID()
		first[home[c]]++
		held = append(held, p)
	}
	for _, p := range held {
		p.Done(balancer.Result{Status: 200, TTFT: 10 * time.Millisecond})
	}
	for id, n := range first {
		if n != 4 {
			t.Errorf("%s took %d of 16 new conversations arriving together: %v", id, n, first)
		}
	}
	for turn := 1; turn < 5; turn++ {
		for c := range 16 {
			p, err := b.Pick(&balancer.Request{Route: "chat", Prompt: conversation(c, turn)})
			if err != nil {
				t.Fatal(err)
			}
			if id := p.Instance.ID(); id != home[c] {
				t.Errorf("conversation %d turn %d went to %s, its earlier turns to %s", c, turn, id, home[c])
			}
			p.Done(balancer.Result{Status: 200, TTFT: 10 * time.Millisecond})
		}
	}
}

// A conversation flooding the pool (the same prompt, many at once, none
// done) gets its home instance up to the bounded-load share and no more.
func TestHotConversationIsBoundedByLoadFactor(t *testing.T) {
	for _, factor := range []float64{1, 1.5, 2} {
		t.Run(fmt.Sprint("factor=", factor), func(t *testing.T) {
			const n = 4
			b := pool(n, engine.Settings{LoadFactor: factor})
			hot := conversation(7, 3)
			var held []balancer.Picked
			defer func() {
				for _, p := range held {
					p.Done(balancer.Result{Status: 200})
				}
			}()
			load := map[string]int{}
			for total := 1; total <= 200; total++ {
				p, err := b.Pick(&balancer.Request{Route: "chat", Prompt: hot})
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, p)
				load[p.Instance.ID()]++
				bound := int(math.Ceil(factor * float64(total) / n))
				for id, l := range load {
					if l > bound {
						t.Fatalf("after %d picks %s holds %d, over the bound %d (factor %v)", total, id, l, bound, factor)
					}
				}
			}
			// Affinity still concentrates the conversation beyond an even
			// share when the bound leaves room for it.
			if top := max(load[lbtest.ID(1)], load[lbtest.ID(2)], load[lbtest.ID(3)], load[lbtest.ID(4)]); factor > 1 && top <= 200/n {
				t.Errorf("the busiest instance holds %d of 200, no more than an even share: %v", top, load)
			}
		})
	}
}

func TestEngineLoadSteersAndGoesStale(t *testing.T) {
	clock := lbtest.NewClock()
	b := pool(2, engine.Settings{Prefix: 0, Queue: 1}, balancer.WithClock(clock.Now), balancer.WithEngineStale(3*time.Second))
	if !b.SetEngineLoad(lbtest.ID(1), balancer.EngineLoad{Waiting: 8, Running: 4}) {
		t.Fatal("SetEngineLoad: instance 1 not found")
	}
	if b.SetEngineLoad("LLM@@qwen#10.9.9.9:1", balancer.EngineLoad{}) {
		t.Error("SetEngineLoad of an unknown instance reported true")
	}
	busy := lbtest.Count(t, b, &balancer.Request{Route: "chat"}, 50, balancer.Result{Status: 200}, lbtest.ByID)
	if busy[lbtest.ID(1)] != 0 {
		t.Errorf("instance 1 with 12 queued in its engine got %d of 50 picks", busy[lbtest.ID(1)])
	}
	clock.Advance(4 * time.Second) // the scrape is now stale: in-flight counts alone
	stale := lbtest.Count(t, b, &balancer.Request{Route: "chat"}, 400, balancer.Result{Status: 200}, lbtest.ByID)
	lbtest.Share(t, "instance 1 after its engine load went stale", stale[lbtest.ID(1)], 400, 0.5, 0.1)

	b.SetEngineLoad(lbtest.ID(1), balancer.EngineLoad{Waiting: 8})
	b.ClearEngineLoad(lbtest.ID(1))
	cleared := lbtest.Count(t, b, &balancer.Request{Route: "chat"}, 400, balancer.Result{Status: 200}, lbtest.ByID)
	lbtest.Share(t, "instance 1 after its engine load was cleared", cleared[lbtest.ID(1)], 400, 0.5, 0.1)
}

// Tags, exclusions and breakers narrow the candidates before the policy
// scores them, affinity or not.
func TestAffinityHonoursTagsExcludeAndBreakers(t *testing.T) {
	clock := lbtest.NewClock()
	b := pool(4, engine.Settings{}, balancer.WithClock(clock.Now),
		balancer.WithBreaker(balancer.BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Minute}))
	prompt := conversation(1, 2)
	p, err := b.Pick(&balancer.Request{Route: "chat", Prompt: prompt})
	if err != nil {
		t.Fatal(err)
	}
	home := p.Instance
	p.Done(balancer.Result{Status: 200})

	other := map[string]string{"zone": "a"}
	if home.Tags["zone"] == "a" {
		other["zone"] = "b"
	}
	for range 20 {
		p, err := b.Pick(&balancer.Request{Route: "chat", Prompt: prompt, Tags: other})
		if err != nil {
			t.Fatal(err)
		}
		if p.Instance.Tags["zone"] != other["zone"] {
			t.Fatalf("tags %v: picked %s (zone %s)", other, p.Instance.ID(), p.Instance.Tags["zone"])
		}
		p.Done(balancer.Result{Status: 200})
	}
	// The index now says another instance of the other zone served the
	// prompt last; excluding it and the home instance must be honoured.
	p, _ = b.Pick(&balancer.Request{Route: "chat", Prompt: prompt, Exclude: []string{home.ID()}})
	if p.Instance.ID() == home.ID() {
		t.Errorf("picked the excluded instance %s", home.ID())
	}
	p.Done(balancer.Result{Err: errors.New("boom")}) // opens its breaker
	opened := p.Instance.ID()
	for range 20 {
		p, err := b.Pick(&balancer.Request{Route: "chat", Prompt: prompt})
		if err != nil {
			t.Fatal(err)
		}
		if p.Instance.ID() == opened {
			t.Fatalf("picked %s, whose breaker is open", opened)
		}
		p.Done(balancer.Result{Status: 200})
	}
}

// Unique prompts match nothing: picks follow load alone and stay even.
func TestUniquePromptsSpreadByLoad(t *testing.T) {
	const n, picks = 4, 400
	b := pool(n, engine.Settings{})
	var held []balancer.Picked
	count := map[string]int{}
	for i := range picks {
		p, err := b.Pick(&balancer.Request{Route: "chat", Prompt: conversation(1000+i, 0)})
		if err != nil {
			t.Fatal(err)
		}
		count[p.Instance.ID()]++
		held = append(held, p)
		if len(held) == 8 { // eight in flight at a time
			held[0].Done(balancer.Result{Status: 200, TTFT: time.Millisecond})
			held = held[1:]
		}
	}
	for _, p := range held {
		p.Done(balancer.Result{Status: 200})
	}
	for id, c := range count {
		lbtest.Share(t, id, c, picks, 1.0/n, 0.08)
	}
}

func TestSettingsValidate(t *testing.T) {
	for _, tc := range []struct {
		s    engine.Settings
		want string // substring of the error, "" for none
	}{
		{engine.Settings{}, ""},
		{engine.Settings{Prefix: 1}, ""},
		{engine.Settings{Prefix: 3, Queue: 2, Latency: 1, LoadFactor: 1}, ""},
		{engine.Settings{Prefix: -1}, "weight prefix"},
		{engine.Settings{Queue: math.NaN()}, "weight queue"},
		{engine.Settings{Latency: math.Inf(1)}, "weight latency"},
		{engine.Settings{LoadFactor: 0.5}, "load_factor"},
		{engine.Settings{LoadFactor: math.Inf(1)}, "load_factor"},
	} {
		err := tc.s.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.s, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want one about %q", tc.s, err, tc.want)
		case err != nil && !errors.Is(err, balancer.ErrBadRoute):
			t.Errorf("%+v: %v does not wrap ErrBadRoute", tc.s, err)
		}
	}
	if d := (engine.Settings{}).WithDefaults(); d.Prefix != 3 || d.Queue != 2 || d.Latency != 1 || d.LoadFactor != 1.5 {
		t.Errorf("defaults %+v", d)
	}
}

// A conversation's next turn stays on its home instance although that one
// is busier and slower than an idle one: a long prefix match outweighs a
// little load and latency (within the bounded load).
func TestHomeOutweighsALittleLoadAndLatency(t *testing.T) {
	b := pool(2, engine.Settings{})
	p, err := b.Pick(&balancer.Request{Route: "chat", Prompt: conversation(1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	home := p.Instance.ID()
	p.Done(balancer.Result{Status: 200, TTFT: 400 * time.Millisecond})
	other := lbtest.ID(1)
	if other == home {
		other = lbtest.ID(2)
	}
	for range 8 { // the other instance answers fast
		p, err := b.Pick(&balancer.Request{Route: "chat", Exclude: []string{home}})
		if err != nil || p.Instance.ID() != other {
			t.Fatalf("pick excluding %s: %v %v", home, p.Instance, err)
		}
		p.Done(balancer.Result{Status: 200, TTFT: 50 * time.Millisecond})
	}
	b.SetEngineLoad(home, balancer.EngineLoad{Running: 2})
	p, err = b.Pick(&balancer.Request{Route: "chat", Prompt: conversation(1, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Done(balancer.Result{Status: 200})
	if p.Instance.ID() != home {
		t.Errorf("turn 2 went to the idle, faster %s, not its home %s", p.Instance.ID(), home)
	}
}

// A scrape that saw this replica's own requests must not make their
// instance look busy once they have ended: the engine's count beyond
// modelgate's in-flight at the scrape is what counts, added to the live
// in-flight count.
func TestOwnRequestsInAScrapeDoNotSteer(t *testing.T) {
	clock := lbtest.NewClock()
	b := pool(2, engine.Settings{Prefix: 0, Queue: 1}, balancer.WithClock(clock.Now))
	var held []balancer.Picked
	for range 4 {
		p, err := b.Pick(&balancer.Request{Route: "chat", Exclude: []string{lbtest.ID(2)}})
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, p)
	}
	// The engine reports the four requests, and one from elsewhere.
	b.SetEngineLoad(lbtest.ID(1), balancer.EngineLoad{Running: 4, Waiting: 1})
	for _, p := range held {
		p.Done(balancer.Result{Status: 200})
	}
	// Instance 1 carries one request (the foreign one) and instance 2
	// none: of four picks held, instance 1 gets one or two, not none as
	// if the scrape's count still held.
	count := map[string]int{}
	held = held[:0]
	for range 4 {
		p, err := b.Pick(&balancer.Request{Route: "chat"})
		if err != nil {
			t.Fatal(err)
		}
		count[p.Instance.ID()]++
		held = append(held, p)
	}
	for _, p := range held {
		p.Done(balancer.Result{Status: 200})
	}
	if n := count[lbtest.ID(1)]; n < 1 || n > 2 {
		t.Errorf("instance 1 got %d of 4 picks after the scrape's own requests ended (%v), want 1 or 2", n, count)
	}
}
