package canary_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/internal/leaktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// overlay records the shares set per route.
type overlay struct {
	mu     sync.Mutex
	shares map[string][]int
}

func (o *overlay) SetCanary(route string, c balancer.Canary) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.shares == nil {
		o.shares = map[string][]int{}
	}
	s := c.Share
	if c.Version == "" {
		s = -1
	}
	o.shares[route] = append(o.shares[route], s)
}

func (o *overlay) last(route string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.shares[route]
	if len(s) == 0 {
		return -2
	}
	return s[len(s)-1]
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newController(t *testing.T, opts ...canary.Option) (*canary.Controller, *overlay, *clock) {
	t.Helper()
	ov, clk := &overlay{}, &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return canary.New(ov, append([]canary.Option{canary.WithClock(clk.Now)}, opts...)...), ov, clk
}

var spec = canary.Spec{Version: "v2", Baseline: "v1", StepAfter: time.Minute, MinRequests: 100}

// version is how a fake version answers.
type version struct {
	failEvery int           // every n-th request fails with 500 (0: none)
	ttft      time.Duration // time to first token
	tokens    int           // output tokens per reply
	finish    string
}

var healthy = version{ttft: 100 * time.Millisecond, tokens: 40, finish: "stop"}

// feed reports n outcomes of each version.
func feed(c *canary.Controller, n int, canaryV, baseV version) {
	for i := range n {
		for name, v := range map[string]version{"v2": canaryV, "v1": baseV} {
			o := canary.Outcome{Status: 200, TTFT: v.ttft + time.Duration(i%10)*time.Millisecond, Stream: true,
				Duration: v.ttft + 400*time.Millisecond, OutputTokens: v.tokens, FinishReason: v.finish}
			if v.failEvery > 0 && i%v.failEvery == 0 {
				o = canary.Outcome{Status: 500, Duration: time.Millisecond}
			}
			c.Observe("chat", name, o)
		}
	}
}

func status(t *testing.T, c *canary.Controller) canary.Status {
	t.Helper()
	st := c.Status()
	if len(st) != 1 {
		t.Fatalf("%d rollouts", len(st))
	}
	return st[0]
}

func TestPromotedThroughEveryStep(t *testing.T) {
	c, ov, clk := newController(t)
	if err := c.Start("chat", spec, canary.FromAdmin); err != nil {
		t.Fatal(err)
	}
	for i, want := range []float64{1, 5, 25, 50} {
		st := status(t, c)
		if st.State != canary.Running || st.Step != i+1 || st.Share != want {
			t.Fatalf("step %d: %+v", i+1, st)
		}
		if got := ov.last("chat"); got != int(want*100) {
			t.Fatalf("step %d: overlay share %d, want %v", i+1, got, want*100)
		}
		feed(c, 150, healthy, healthy)
		c.Tick()
		if st := status(t, c); st.Step != i+1 || st.LastVerdict != nil && st.LastVerdict.Step == i+1 {
			t.Fatalf("judged before step_after: %+v", st.LastVerdict)
		}
		clk.Advance(time.Minute)
		c.Tick()
	}
	st := status(t, c)
	if st.State != canary.Promoted || st.Share != 100 || ov.last("chat") != balancer.CanaryScale {
		t.Fatalf("end: %+v, overlay %d", st, ov.last("chat"))
	}
	if st.Step != 5 || st.Verdicts.Pass != 4 || st.Verdicts.Breach != 0 || st.LastVerdict.Result != canary.Pass {
		t.Fatalf("verdicts %+v, last %+v", st.Verdicts, st.LastVerdict)
	}
}

func TestRolledBack(t *testing.T) {
	for _, tt := range []struct {
		name   string
		canary version
		breach []string
	}{
		{"10 % errors", version{failEvery: 10, ttft: healthy.ttft, tokens: 40, finish: "stop"}, []string{"error_ratio"}},
		{"TTFT 3× slower", version{ttft: 3 * healthy.ttft, tokens: 40, finish: "stop"}, []string{"ttft_p95_ms"}},
		{"empty replies", version{ttft: healthy.ttft, tokens: 0, finish: "stop"}, []string{"output_tokens_per_second", "bad_reply_ratio"}},
		{"cut short", version{ttft: healthy.ttft, tokens: 3, finish: "length"}, []string{"output_tokens_per_second", "bad_reply_ratio"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var events []canary.Event
			c, ov, clk := newController(t, canary.OnEvent(func(e canary.Event) { events = append(events, e) }))
			if err := c.Start("chat", spec, canary.FromConfig); err != nil {
				t.Fatal(err)
			}
			// Step 1 passes healthy, step 2 breaks.
			feed(c, 100, healthy, healthy)
			clk.Advance(time.Minute)
			c.Tick()
			feed(c, 99, tt.canary, healthy)
			c.Tick()
			if st := status(t, c); st.State != canary.Running || st.Step != 2 {
				t.Fatalf("judged below min_requests: %+v", st)
			}
			feed(c, 1, tt.canary, healthy)
			c.Tick() // a breach is acted on before step_after is over
			st := status(t, c)
			if st.State != canary.Aborted || st.Share != 0 || ov.last("chat") != 0 {
				t.Fatalf("after breach: state %s share %v overlay %d", st.State, st.Share, ov.last("chat"))
			}
			v := st.LastVerdict
			if v == nil || v.Result != canary.Breach || v.Step != 2 || v.Canary.Requests != 100 || v.Baseline.Requests != 100 {
				t.Fatalf("verdict %+v", v)
			}
			if got := strings.Join(v.Breached(), ","); got != strings.Join(tt.breach, ",") {
				t.Errorf("breached %s, want %s: %s", got, strings.Join(tt.breach, ","), v.Summary())
			}
			last := events[len(events)-1]
			if last.Kind != "breach" || last.Verdict != v || !strings.Contains(last.Message, "BREACH") {
				t.Errorf("event %+v", last)
			}
			var m bytes.Buffer
			c.WritePrometheus(&m)
			for _, want := range []string{`modelgate_canary_step{model="chat"} 0`, `modelgate_canary_share_percent{model="chat"} 0`,
				`modelgate_canary_verdicts_total{model="chat",result="pass"} 1`, `modelgate_canary_verdicts_total{model="chat",result="breach"} 1`} {
				if !strings.Contains(m.String(), want+"\n") {
					t.Errorf("metrics lack %q:\n%s", want, m.String())
				}
			}
			// Nothing more is judged or counted.
			feed(c, 200, tt.canary, healthy)
			clk.Advance(time.Hour)
			c.Tick()
			if st := status(t, c); st.Verdicts.Breach != 1 || st.Window.Canary.Requests != 100 {
				t.Errorf("after abort: %+v", st)
			}
		})
	}
}

func TestErrorRatioIsRelative(t *testing.T) {
	c, _, clk := newController(t)
	if err := c.Start("chat", spec, canary.FromConfig); err != nil {
		t.Fatal(err)
	}
	both := version{failEvery: 10, ttft: healthy.ttft, tokens: 40, finish: "stop"}
	feed(c, 200, both, both) // both at 10 %: the canary is no worse
	clk.Advance(time.Minute)
	c.Tick()
	if st := status(t, c); st.State != canary.Running || st.Step != 2 {
		t.Fatalf("%+v: %s", st, st.LastVerdict.Summary())
	}
}

func TestAbortAndRemove(t *testing.T) {
	c, ov, _ := newController(t)
	if err := c.Abort("chat", ""); !errors.Is(err, canary.ErrNoRollout) {
		t.Fatalf("abort without rollout: %v", err)
	}
	if err := c.Start("chat", spec, canary.FromAdmin); err != nil {
		t.Fatal(err)
	}
	if err := c.Abort("chat", "by hand"); err != nil {
		t.Fatal(err)
	}
	if st := status(t, c); st.State != canary.Aborted || st.Reason != "by hand" || ov.last("chat") != 0 {
		t.Fatalf("%+v", st)
	}
	c.Remove("chat")
	if len(c.Status()) != 0 || ov.last("chat") != -1 {
		t.Fatalf("after remove: %v, overlay %d", c.Status(), ov.last("chat"))
	}
}

func TestSetConfigured(t *testing.T) {
	c, _, clk := newController(t)
	if err := c.SetConfigured(map[string]canary.Spec{"chat": spec}); err != nil {
		t.Fatal(err)
	}
	feed(c, 100, healthy, healthy)
	clk.Advance(time.Minute)
	c.Tick()
	// The same rollout with another min_requests keeps its step.
	more := spec
	more.MinRequests = 300
	if err := c.SetConfigured(map[string]canary.Spec{"chat": more}); err != nil {
		t.Fatal(err)
	}
	if st := status(t, c); st.Step != 2 || st.MinRequests != 300 {
		t.Fatalf("%+v", st)
	}
	// Another version starts over.
	v3 := spec
	v3.Version = "v3"
	bad := canary.Spec{Version: "v1", Baseline: "v1"}
	if err := c.SetConfigured(map[string]canary.Spec{"chat": v3, "other": bad}); !errors.Is(err, canary.ErrBadSpec) {
		t.Fatalf("bad spec: %v", err)
	}
	if st := status(t, c); st.Step != 1 || st.Version != "v3" {
		t.Fatalf("%+v", st)
	}
	if err := c.SetConfigured(nil); err != nil {
		t.Fatal(err)
	}
	if n := len(c.Status()); n != 0 {
		t.Fatalf("%d rollouts left", n)
	}
}

func TestSpecValidate(t *testing.T) {
	for _, tt := range []struct {
		spec canary.Spec
		want string
	}{
		{canary.Spec{Version: "v2", Baseline: "v1"}, ""},
		{canary.Spec{Baseline: "v1"}, "version is empty"},
		{canary.Spec{Version: "v2"}, "baseline is empty"},
		{canary.Spec{Version: "v2", Baseline: "v2"}, "is the canary version itself"},
		{canary.Spec{Version: "v2", Baseline: "v1", Steps: []float64{5, 5}}, "steps[1] = 5 is not above"},
		{canary.Spec{Version: "v2", Baseline: "v1", Steps: []float64{0}}, "steps[0] = 0"},
		{canary.Spec{Version: "v2", Baseline: "v1", Steps: []float64{101}}, "steps[0] = 101"},
		{canary.Spec{Version: "v2", Baseline: "v1", Steps: []float64{100}}, "first step must be below 100"},
		{canary.Spec{Version: "v2", Baseline: "v1", StepAfter: -1}, "step_after"},
		{canary.Spec{Version: "v2", Baseline: "v1", MinRequests: -1}, "min_requests"},
		{canary.Spec{Version: "v2", Baseline: "v1", Thresholds: canary.Thresholds{TTFTFactor: 0.5}}, "ttft_p95_factor"},
		{canary.Spec{Version: "v2", Baseline: "v1", Thresholds: canary.Thresholds{TokensFactor: 2}}, "tokens_per_second_factor"},
		{canary.Spec{Version: "v2", Baseline: "v1", Thresholds: canary.Thresholds{ErrorPoints: -1}}, "error_points"},
	} {
		err := tt.spec.Validate()
		if (tt.want == "") != (err == nil) || err != nil && (!strings.Contains(err.Error(), tt.want) || !errors.Is(err, canary.ErrBadSpec)) {
			t.Errorf("%+v: %v, want %q", tt.spec, err, tt.want)
		}
	}
}

func TestRunStops(t *testing.T) {
	c, _, _ := newController(t, canary.WithInterval(time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// memSync is a shared document in memory, with compare-and-publish.
type memSync struct {
	mu      sync.Mutex
	content string
	writes  int
}

func (m *memSync) Get() (string, error) { m.mu.Lock(); defer m.mu.Unlock(); return m.content, nil }
func (m *memSync) Publish(content, prev string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.content != prev {
		return false, nil
	}
	m.content = content
	m.writes++
	return true, nil
}

// TestSyncAbortsEverywhere: two replicas share a document; both advance,
// one breaches, and the other follows the abort. The other's later step
// never overwrites it.
func TestSyncAbortsEverywhere(t *testing.T) {
	doc := &memSync{}
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	ova, ovb := &overlay{}, &overlay{}
	a := canary.New(ova, canary.WithClock(clk.Now), canary.WithSync(doc, "a"))
	b := canary.New(ovb, canary.WithClock(clk.Now), canary.WithSync(doc, "b"))
	if err := a.Start("chat", spec, canary.FromAdmin); err != nil {
		t.Fatal(err)
	}
	a.Publish()
	b.Follow(doc.content)
	if st := status(t, b); st.State != canary.Running || st.Origin != canary.FromSync || ovb.last("chat") != 100 {
		t.Fatalf("b did not start: %+v", st)
	}
	// a passes step 1 first; b follows to step 2.
	feed(a, 100, healthy, healthy)
	clk.Advance(time.Minute)
	a.Tick()
	a.Publish()
	b.Follow(doc.content)
	if st := status(t, b); st.Step != 2 || ovb.last("chat") != 500 {
		t.Fatalf("b at %+v", st)
	}
	// b breaches on its own traffic, a follows.
	feed(b, 100, version{failEvery: 5, ttft: healthy.ttft, tokens: 40, finish: "stop"}, healthy)
	b.Tick()
	b.Publish()
	// Meanwhile a passed step 2 on its traffic: publishing must not undo
	// the abort, and a follows it instead.
	feed(a, 100, healthy, healthy)
	clk.Advance(time.Minute)
	a.Tick()
	a.Publish()
	for name, c := range map[string]*canary.Controller{"a": a, "b": b} {
		st := status(t, c)
		if st.State != canary.Aborted || st.Share != 0 {
			t.Fatalf("%s: %+v", name, st)
		}
	}
	if ova.last("chat") != 0 || ovb.last("chat") != 0 {
		t.Fatalf("overlays %d %d", ova.last("chat"), ovb.last("chat"))
	}
	d, err := canary.ParseDocument(doc.content)
	if err != nil {
		t.Fatal(err)
	}
	if e := d["chat"]; e.State != canary.Aborted || e.By != "b" || !strings.Contains(e.Reason, "error_ratio") {
		t.Fatalf("document: %+v", e)
	}
	// A restart of a (a new controller from config) stays aborted.
	a2 := canary.New(&overlay{}, canary.WithClock(clk.Now), canary.WithSync(doc, "a"))
	if err := a2.SetConfigured(map[string]canary.Spec{"chat": spec}); err != nil {
		t.Fatal(err)
	}
	a2.Follow(doc.content)
	a2.Publish()
	if st := status(t, a2); st.State != canary.Aborted {
		t.Fatalf("restarted replica: %+v", st)
	}
	if e, _ := canary.ParseDocument(doc.content); e["chat"].State != canary.Aborted {
		t.Fatalf("document after restart: %+v", e["chat"])
	}
}

func TestFollowBadDocument(t *testing.T) {
	c, _, _ := newController(t)
	c.Follow("chat: [not a map")
	c.Follow("chat:\n  version: v2\n  baseline: v2\n")
	c.Follow("chat:\n  version: v2\n  baseline: v1\n  state: sideways\n")
	if n := len(c.Status()); n != 0 {
		t.Fatalf("%d rollouts from bad documents", n)
	}
	c.Follow("chat:\n  version: v2\n  baseline: v1\n  steps: [10, 20, 100]\n  step: 2\n")
	if st := status(t, c); st.State != canary.Running || st.Share != 20 || st.Step != 2 {
		t.Fatalf("%+v", st)
	}
}

// TestLastStepBelow100Promotes: steps that end below 100 % promote at the
// last one; the share becomes 100 %.
func TestLastStepBelow100Promotes(t *testing.T) {
	c, ov, clk := newController(t)
	s := spec
	s.Steps = []float64{10, 30}
	if err := c.Start("chat", s, canary.FromConfig); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		feed(c, 100, healthy, healthy)
		clk.Advance(time.Minute)
		c.Tick()
	}
	if st := status(t, c); st.State != canary.Promoted || st.Share != 100 || ov.last("chat") != balancer.CanaryScale || st.Verdicts.Pass != 2 {
		t.Fatalf("%+v", st)
	}
}
