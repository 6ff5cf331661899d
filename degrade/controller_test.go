package degrade_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/modelgate/modelgate/degrade"
	"github.com/modelgate/modelgate/internal/fakeclock"
)

// change is one call of the OnChange hook.
type change struct {
	route    string
	from, to degrade.Tier
	pinned   bool
}

// recorder collects OnChange calls.
type recorder struct {
	mu      sync.Mutex
	changes []change
}

func (r *recorder) hook(route string, from, to degrade.Tier, pinned bool) {
	r.mu.Lock()
	r.changes = append(r.changes, change{route, from, to, pinned})
	r.mu.Unlock()
}

func (r *recorder) all() []change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]change(nil), r.changes...)
}

// driver feeds a route one observation a second on a fake clock.
type driver struct {
	t     *testing.T
	c     *degrade.Controller
	clock *fakeclock.Clock
	rec   *recorder
	log   *bytes.Buffer
}

func newDriver(t *testing.T, th degrade.Thresholds) *driver {
	d := &driver{t: t, clock: fakeclock.New(t0), rec: &recorder{}, log: &bytes.Buffer{}}
	d.c = degrade.NewController(nil, degrade.WithThresholds(th), degrade.WithClock(d.clock),
		degrade.OnChange(d.rec.hook), degrade.WithLogger(zerolog.New(d.log)))
	return d
}

// feed observes s for n seconds (n observations, one per second, the first
// one second after the clock's current time) and returns the tier after each.
func (d *driver) feed(s degrade.Signals, n int) []degrade.Tier {
	out := make([]degrade.Tier, n)
	for i := range out {
		d.clock.Advance(time.Second)
		d.c.Observe("chat", s, d.clock.Now())
		out[i] = d.c.Tier("chat")
	}
	return out
}

func tiers(ts ...degrade.Tier) string { return fmt.Sprint(ts) }

// seq spells runs of tiers: seq(n, 2, s, 3) is "[normal normal shed shed shed]".
func seq(runs ...any) string {
	var ts []degrade.Tier
	for i := 0; i < len(runs); i += 2 {
		for range runs[i+1].(int) {
			ts = append(ts, runs[i].(degrade.Tier))
		}
	}
	return tiers(ts...)
}

const (
	n = degrade.TierNormal
	s = degrade.TierShed
	k = degrade.TierCap
	c = degrade.TierCache
)

var (
	shedding = with(func(s *degrade.Signals) { s.ErrorRatio = 0.3 })
	capping  = with(func(s *degrade.Signals) { s.BreakerOpen = 0.8 })
	down     = with(func(s *degrade.Signals) { s.BreakerOpen = 1 })
)

func TestControllerHysteresis(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []struct {
			s degrade.Signals
			n int
		}
		want string
	}{
		{"enter after 3s, not before", steps(shedding, 4), tiers(n, n, s, s)},
		// The run starts at the first observation; the third one after is
		// 3 s later.
		{"skip from normal to cache", steps(down, 4), tiers(n, n, c, c)},
		{"shed first, then cache when its own run is long enough",
			steps(shedding, 2, down, 4), tiers(n, n, s, s, c, c)},
		{"a healthy second restarts the run",
			steps(shedding, 2, healthy, 1, shedding, 4), tiers(n, n, n, n, n, s, s)},
		// The exit run starts at the first healthy observation; the 16th is
		// 15 s later.
		{"exit only after 15s", steps(shedding, 3, healthy, 16), seq(n, 2, s, 16, n, 1)},
		{"drop to the lowest tier that qualifies, in one step", steps(down, 3, healthy, 16), seq(n, 2, c, 16, n, 1)},
		{"drop to shed while shed holds", steps(down, 3, shedding, 16), seq(n, 2, c, 16, s, 1)},
		{"a relapse restarts the exit run", steps(capping, 3, healthy, 10, capping, 1, healthy, 16),
			seq(n, 2, k, 27, n, 1)},
		{"worse while degraded goes up", steps(shedding, 3, capping, 3), tiers(n, n, s, s, s, k)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, degrade.Thresholds{EnterAfter: 2 * time.Second})
			var got []degrade.Tier
			for _, st := range tc.steps {
				got = append(got, d.feed(st.s, st.n)...)
			}
			if tiers(got...) != tc.want {
				t.Fatalf("tiers\n got %v\nwant %v", tiers(got...), tc.want)
			}
			d.checkLogOnce()
		})
	}
}

// steps pairs signals with counts: steps(a, 2, b, 3).
func steps(args ...any) []struct {
	s degrade.Signals
	n int
} {
	var out []struct {
		s degrade.Signals
		n int
	}
	for i := 0; i < len(args); i += 2 {
		out = append(out, struct {
			s degrade.Signals
			n int
		}{args[i].(degrade.Signals), args[i+1].(int)})
	}
	return out
}

// checkLogOnce checks that every tier change was reported and logged once.
func (d *driver) checkLogOnce() {
	d.t.Helper()
	logged := strings.Count(d.log.String(), "degrade tier changed")
	if hooks := len(d.rec.all()); logged != hooks {
		d.t.Fatalf("%d tier changes logged, %d reported:\n%s", logged, hooks, d.log)
	}
	prev := degrade.TierNormal
	for _, ch := range d.rec.all() {
		if ch.from != prev || ch.from == ch.to {
			d.t.Fatalf("change %+v does not follow %v", ch, prev)
		}
		prev = ch.to
	}
}

func TestControllerDefaultWindows(t *testing.T) {
	d := newDriver(t, degrade.Thresholds{})
	got := d.feed(down, 4)
	if tiers(got...) != tiers(n, n, n, c) {
		t.Fatalf("EnterAfter 3s: %v", got)
	}
	got = d.feed(healthy, 16)
	if got[14] != c || got[15] != n {
		t.Fatalf("ExitAfter 15s: %v", got)
	}
}

func TestControllerPin(t *testing.T) {
	d := newDriver(t, degrade.Thresholds{EnterAfter: -1, ExitAfter: -1})
	d.feed(healthy, 1)
	if err := d.c.Pin("chat", degrade.TierCache, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := d.c.Tier("chat"); got != c {
		t.Fatalf("pinned tier %v", got)
	}
	got := d.feed(healthy, 60)
	if got[58] != c || got[59] != n {
		t.Fatalf("a 60s pin: at 59s %v, at 60s %v", got[58], got[59])
	}
	want := []change{{"chat", n, c, true}, {"chat", c, n, false}}
	if fmt.Sprint(d.rec.all()) != fmt.Sprint(want) {
		t.Fatalf("changes %v, want %v", d.rec.all(), want)
	}

	// A pin without TTL lasts until Unpin, over what the signals say.
	if err := d.c.Pin("chat", degrade.TierNormal, 0); err != nil {
		t.Fatal(err)
	}
	if got := d.feed(down, 5); got[4] != n {
		t.Fatalf("pinned normal moved to %v", got[4])
	}
	st, _ := d.c.Status("chat")
	if !st.Pinned || st.Auto != c || st.SignalsTier != c || !st.PinnedUntil.IsZero() {
		t.Fatalf("status %+v", st)
	}
	d.c.Unpin("chat")
	if got := d.c.Tier("chat"); got != c {
		t.Fatalf("after Unpin %v, want the earned %v", got, c)
	}
	d.c.Unpin("chat")   // no pin: nothing happens
	d.c.Unpin("absent") // unknown: nothing happens
	d.checkLogOnce()

	if err := d.c.Pin("chat", 4, time.Minute); !errors.Is(err, degrade.ErrBadTier) {
		t.Fatalf("Pin(4) = %v", err)
	}
	// Pinning an unknown route makes it known.
	if err := d.c.Pin("new", degrade.TierShed, time.Second); err != nil || d.c.Tier("new") != s {
		t.Fatalf("pin of a new route: %v, %v", err, d.c.Tier("new"))
	}
}

func TestControllerRoutes(t *testing.T) {
	d := newDriver(t, degrade.Thresholds{EnterAfter: -1})
	if d.c.Tier("nope") != n {
		t.Fatal("unknown route not normal")
	}
	if _, ok := d.c.Status("nope"); ok {
		t.Fatal("unknown route has a status")
	}
	d.c.SetRoutes([]string{"b", "a"})
	d.c.Observe("a", down, t0)
	d.c.SetRoutes([]string{"a", "c"})
	var names []string
	for _, st := range d.c.Statuses() {
		names = append(names, st.Route)
	}
	if fmt.Sprint(names) != "[a c]" || d.c.Tier("a") != c {
		t.Fatalf("routes %v, a in %v", names, d.c.Tier("a"))
	}
}

func TestControllerRun(t *testing.T) {
	clock := fakeclock.New(t0)
	changes := make(chan change, 8)
	var mu sync.Mutex
	sig := map[string]degrade.Signals{"chat": healthy, "embed": healthy}
	src := func(route string) degrade.Signals {
		mu.Lock()
		defer mu.Unlock()
		return sig[route]
	}
	ctl := degrade.NewController(src, degrade.WithClock(clock), degrade.WithInterval(time.Second),
		degrade.WithThresholds(degrade.Thresholds{EnterAfter: 2 * time.Second}),
		degrade.OnChange(func(route string, from, to degrade.Tier, pinned bool) {
			changes <- change{route, from, to, pinned}
		}))
	ctl.SetRoutes([]string{"chat", "embed"})
	mu.Lock()
	sig["chat"] = down
	mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctl.Run(ctx) }()
	for range 2 { // two ticks after the first observation: 2 s
		waitFor(t, "Run to arm its tick", func() bool { return clock.Pending() == 1 })
		clock.Advance(time.Second)
	}
	if ch := <-changes; ch != (change{"chat", n, c, false}) {
		t.Fatalf("change %+v", ch)
	}
	if ctl.Tier("embed") != n {
		t.Fatal("embed degraded")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if err := degrade.NewController(nil).Run(ctx); !errors.Is(err, degrade.ErrNoSource) {
		t.Fatalf("Run without source = %v", err)
	}
}

// TestControllerConcurrent exercises every method at once, for -race.
func TestControllerConcurrent(t *testing.T) {
	clock := fakeclock.New(t0)
	ctl := degrade.NewController(nil, degrade.WithClock(clock),
		degrade.WithThresholds(degrade.Thresholds{EnterAfter: -1, ExitAfter: -1}))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			route := fmt.Sprint("r", g%3)
			for i := range 500 {
				switch i % 5 {
				case 0:
					ctl.Observe(route, down, t0.Add(time.Duration(i)*time.Second))
				case 1:
					ctl.Observe(route, healthy, t0.Add(time.Duration(i)*time.Second))
				case 2:
					_ = ctl.Pin(route, degrade.TierShed, time.Second)
				case 3:
					ctl.Unpin(route)
				default:
					_ = ctl.Tier(route)
					_ = ctl.Statuses()
				}
			}
		})
	}
	wg.Wait()
}

// TestControllerReason checks that a route's status says in words why it
// is at its tier: the condition that holds, the hysteresis in either
// direction, and a pin with its reason.
func TestControllerReason(t *testing.T) {
	d := newDriver(t, degrade.Thresholds{EnterAfter: 3 * time.Second, ExitAfter: 10 * time.Second})
	reason := func() string {
		st, _ := d.c.Status("chat")
		return st.Reason
	}
	d.feed(healthy, 2)
	if r := reason(); r != "" {
		t.Fatalf("healthy route: reason %q, want none", r)
	}
	errs := healthy
	errs.Requests, errs.ErrorRatio = 50, 0.25
	d.feed(errs, 1)
	if r := reason(); r != "signals at shed (error ratio 25.0 % ≥ 20.0 %); entered once they hold for 3s" {
		t.Fatalf("entering: %q", r)
	}
	d.feed(errs, 5)
	if r := reason(); r != "error ratio 25.0 % ≥ 20.0 %" {
		t.Fatalf("in shed: %q", r)
	}
	d.feed(healthy, 2)
	if r := reason(); r != "holding shed until the signals stay at normal for 10s" {
		t.Fatalf("leaving: %q", r)
	}
	if err := d.c.PinWithReason("chat", degrade.TierCap, 10*time.Minute, "maintenance of rack 4"); err != nil {
		t.Fatal(err)
	}
	st, _ := d.c.Status("chat")
	if st.Reason != "pinned by the admin API: maintenance of rack 4" || st.PinReason != "maintenance of rack 4" ||
		!st.PinnedUntil.Equal(d.clock.Now().Add(10*time.Minute)) {
		t.Fatalf("pinned: %+v", st)
	}
	if !strings.Contains(d.log.String(), `"pin_reason":"maintenance of rack 4"`) {
		t.Errorf("the pin's reason is not logged:\n%s", d.log)
	}
	d.c.Unpin("chat")
	if st, _ := d.c.Status("chat"); st.Pinned || st.PinReason != "" {
		t.Fatalf("unpinned: %+v", st)
	}
}

func TestThresholdsExplain(t *testing.T) {
	for _, tc := range []struct {
		s    degrade.Signals
		want string
	}{
		{healthy, ""},
		{degrade.Signals{Ready: 0}, "usable instances 0.0 % ≤ 0.0 %"},
		{degrade.Signals{Ready: 1, BreakerOpen: 1}, "breakers open 100.0 % ≥ 100.0 %"},
		{degrade.Signals{Ready: 1, BreakerOpen: 0.5}, "breakers open 50.0 % ≥ 50.0 %"},
		{degrade.Signals{Ready: 1, InFlight: 9, Capacity: 10}, "in flight 9 ≥ 90.0 % of capacity 10"},
		{degrade.Signals{Ready: 1, Requests: 20, TTFTp95: 1500 * time.Millisecond, TTFTSLO: time.Second}, "TTFT p95 1.5s > SLO 1s"},
		{degrade.Signals{Ready: 1, Requests: 5, ErrorRatio: 1}, ""}, // too few requests to count
	} {
		if got := (degrade.Thresholds{}).Explain(tc.s); got != tc.want {
			t.Errorf("Explain(%+v) = %q, want %q", tc.s, got, tc.want)
		}
	}
}
