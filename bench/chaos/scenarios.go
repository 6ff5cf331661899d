package chaos

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelgate/modelgate/bench/harness"
)

// load sends chat requests at a fixed rate (open loop: a slow reply does
// not hold the next request back) until stopped.
type load struct {
	mu      sync.Mutex
	replies []harness.Reply
	start   time.Time
	stop    chan struct{}
	done    chan struct{}
}

func startLoad(api string, rate int, prefix string) *load {
	l := &load{start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	hc := harness.NewClient(api, false)
	interval := time.Second / time.Duration(rate)
	go func() {
		defer close(l.done)
		var wg sync.WaitGroup
		defer wg.Wait()
		t := time.NewTicker(interval)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			case <-t.C:
			}
			id := prefix + "-" + strconv.Itoa(i)
			wg.Go(func() {
				r := harness.Chat(hc, "chat", id, 15*time.Second)
				l.mu.Lock()
				l.replies = append(l.replies, r)
				l.mu.Unlock()
			})
		}
	}()
	return l
}

// finish stops sending and waits for every request in flight.
func (l *load) finish() []harness.Reply {
	close(l.stop)
	<-l.done
	return l.replies
}

// snapshot returns the replies so far.
func (l *load) snapshot() []harness.Reply {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.replies)
}

// waitReply waits until a reply from instance to a request sent after since
// arrives.
func (l *load) waitReply(instance string, since time.Time, within time.Duration) (time.Time, error) {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); {
		for _, r := range l.snapshot() {
			if r.Instance == instance && r.Status == 200 && r.Sent.After(since) {
				return r.Sent.Add(r.Latency), nil
			}
		}
		time.Sleep(20 * time.Millisecond) // polling the load's own records
	}
	return time.Time{}, fmt.Errorf("%s got no request within %v", instance, within)
}

// tally counts a run's replies and the instances' completions.
func (e *env) tally(r *Result, replies []harness.Reply) error {
	r.Sent = len(replies)
	var firstErr string
	for _, x := range replies {
		switch {
		case x.Status == 0 || x.Mismatch:
			r.Lost++
			if firstErr == "" {
				firstErr = fmt.Sprintf("lost %s: %v (mismatch %v)", x.ID, x.Err, x.Mismatch)
			}
		case x.Status != 200:
			r.Errors++
			if firstErr == "" {
				firstErr = fmt.Sprintf("%s: status %d", x.ID, x.Status)
			}
		}
	}
	done, _, err := e.completions()
	if err != nil {
		return err
	}
	for _, n := range done {
		if n > 1 {
			r.Dup++
		}
	}
	// A reply the client got must have been completed by an instance.
	for _, x := range replies {
		if x.Status == 200 && done[x.ID] == 0 {
			r.fail("%s answered 200 but no instance completed it", x.ID)
			break
		}
	}
	if r.Lost > 0 {
		r.fail("%d requests lost (%s)", r.Lost, firstErr)
	}
	if r.Dup > 0 {
		r.fail("%d requests answered by two instances", r.Dup)
	}
	if r.Errors > 0 {
		r.extra("first error: %s", firstErr)
	}
	return nil
}

func maxLatency(replies []harness.Reply, after time.Time) time.Duration {
	var m time.Duration
	for _, x := range replies {
		if x.Sent.After(after) && x.Latency > m {
			m = x.Latency
		}
	}
	return m
}

func runScenario(o *Options, name string) (Result, error) {
	r := Result{Name: name}
	e, err := newEnv(o, name)
	if err != nil {
		return r, err
	}
	defer e.close()
	l := startLoad(e.api, o.Rate, name)
	stopped := false
	defer func() {
		if !stopped {
			l.finish()
		}
	}()
	settle := o.Duration / 4
	time.Sleep(settle) // steady load before the fault
	fault := time.Now()
	switch name {
	case "kill-instance":
		err = e.kill(&r, l, fault)
	case "slow-instance":
		err = e.slow(&r, l, fault)
	case "deregister-streaming":
		err = e.deregisterStreaming(&r, l, fault)
	case "hung-instance":
		err = e.hung(&r, l, fault)
	case "nacos-restart":
		err = e.nacosRestart(&r, l, fault)
	default:
		err = fmt.Errorf("unknown scenario %q", name)
	}
	if err != nil {
		return r, err
	}
	if rest := o.Duration - time.Since(l.start); rest > 0 {
		time.Sleep(rest) // the rest of the steady load
	}
	replies := l.finish()
	stopped = true
	if name == "hung-instance" {
		// Let the requests still hanging go without an answer.
		_ = harness.Post(e.mocks["m2"].ctl + "mode?m=close")
	}
	if err := e.tally(&r, replies); err != nil {
		return r, err
	}
	switch name {
	case "kill-instance":
		err = e.killFigures(&r, replies, fault)
	case "slow-instance":
		err = e.slowShare(&r, replies, fault)
	case "hung-instance":
		e.hungFigures(&r, replies, fault)
	}
	if err != nil {
		return r, err
	}
	// With retries on, no client error is expected in any scenario.
	if r.Errors > 0 {
		r.fail("%d client errors", r.Errors)
	}
	r.OK = len(r.Failures) == 0
	return r, nil
}

// kill: SIGKILL one instance; retries must hide it from every client.
func (e *env) kill(r *Result, l *load, fault time.Time) error {
	m := e.mocks["m2"]
	m.proc.Kill()
	if err := e.waitPool(30*time.Second, func(in []instanceView) bool { return !hasAddr(in, m.addr) }); err != nil {
		return err
	}
	r.Recover, r.RecoverWhat = time.Since(fault), "killed instance left modelgate's pool after"
	return nil
}

// killFigures counts the requests the killed instance had received but not
// answered (modelgate must have retried them) and the worst latency.
func (e *env) killFigures(r *Result, replies []harness.Reply, fault time.Time) error {
	f, err := os.ReadFile(e.mocks["m2"].log)
	if err != nil {
		return err
	}
	state := map[string]byte{}
	for line := range strings.SplitSeq(string(f), "\n") {
		if fields := strings.Fields(line); len(fields) == 3 {
			state[fields[2]] = fields[0][0]
		}
	}
	cut := 0
	for _, st := range state {
		if st == 'a' {
			cut++
		}
	}
	r.extra("requests in flight at the killed instance (retried elsewhere) %d, max latency after the kill %v",
		cut, maxLatency(replies, fault).Round(time.Millisecond))
	return nil
}

// slow: one instance becomes 500 ms slower; its share must drop.
func (e *env) slow(r *Result, l *load, fault time.Time) error {
	return harness.Post(e.mocks["m2"].ctl + "set?latency=520ms")
}

// slowShare computes the slow instance's share of requests after the fault,
// per second, and over the second half of the time after the fault.
func (e *env) slowShare(r *Result, replies []harness.Reply, fault time.Time) error {
	end := l0(replies)
	half := fault.Add(end.Sub(fault) / 2)
	type bucket struct{ slow, all int }
	var buckets []bucket
	var after, afterSlow, late, lateSlow int
	for _, x := range replies {
		if x.Status != 200 || !x.Sent.After(fault) {
			continue
		}
		i := int(x.Sent.Sub(fault) / time.Second)
		for len(buckets) <= i {
			buckets = append(buckets, bucket{})
		}
		buckets[i].all++
		after++
		isSlow := x.Instance == "m2"
		if isSlow {
			buckets[i].slow++
			afterSlow++
		}
		if x.Sent.After(half) {
			late++
			if isSlow {
				lateSlow++
			}
		}
	}
	goal := e.o.SlowShareGoal
	// Recovered: from the first second after which every second's share
	// stays below the goal.
	rec := len(buckets)
	for i := len(buckets) - 1; i >= 0; i-- {
		if b := buckets[i]; b.all > 0 && float64(b.slow)/float64(b.all) >= goal {
			break
		}
		rec = i
	}
	r.Recover, r.RecoverWhat = time.Duration(rec)*time.Second, "slow share below goal from"
	share := func(s, a int) float64 {
		if a == 0 {
			return 0
		}
		return float64(s) / float64(a)
	}
	var perSec []string
	for _, b := range buckets {
		perSec = append(perSec, fmt.Sprintf("%.0f%%", 100*share(b.slow, b.all)))
	}
	r.extra("slow instance's share after the fault %.1f%%, in its second half %.1f%% (goal < %.0f%%); per second: %s",
		100*share(afterSlow, after), 100*share(lateSlow, late), 100*goal, strings.Join(perSec, " "))
	r.extra("max latency after the fault %v", maxLatency(replies, fault).Round(time.Millisecond))
	if share(lateSlow, late) >= goal {
		r.fail("slow instance still got %.1f%% of requests", 100*share(lateSlow, late))
	}
	return nil
}

func l0(replies []harness.Reply) time.Time {
	var end time.Time
	for _, x := range replies {
		if x.Sent.After(end) {
			end = x.Sent
		}
	}
	return end
}

// deregisterStreaming: streams run on an instance that is deregistered;
// they must complete, and new requests must stop reaching it.
func (e *env) deregisterStreaming(r *Result, l *load, fault time.Time) error {
	const streams = 6
	hc := harness.NewClient(e.api, true)
	defer hc.CloseIdleConnections()
	results := make([]harness.StreamResult, streams)
	opened := make(chan string, streams)
	var wg sync.WaitGroup
	for i := range streams {
		wg.Go(func() {
			results[i] = harness.Stream(hc, "chat", false, func(in string) { opened <- in })
			if results[i].Status == 0 {
				opened <- "" // no headers: count it anyway
			}
		})
	}
	// Every stream has its headers, so the instances have sent their first
	// events: pick the instance with the most streams.
	count := map[string]int{}
	timeout := time.After(10 * time.Second)
	for range streams {
		select {
		case in := <-opened:
			count[in]++
		case <-timeout:
			wg.Wait()
			return fmt.Errorf("streams did not start within 10s")
		}
	}
	var victim *mock
	best := 0
	for name, n := range count {
		if m := e.mocks[name]; m != nil && n > best {
			best, victim = n, m
		}
	}
	if victim == nil {
		wg.Wait()
		return fmt.Errorf("no stream reached an instance: %+v", results)
	}
	t0 := time.Now()
	if err := harness.Post(victim.ctl + "deregister"); err != nil {
		wg.Wait()
		return err
	}
	wg.Wait()
	onVictim, whole := 0, 0
	for _, s := range results {
		if s.Instance != victim.name {
			continue
		}
		onVictim++
		if s.Err == nil && s.Done && !s.ErrorEvent && s.Events == 23 {
			whole++
		} else {
			r.fail("a stream on the deregistered instance broke: events %d, done %v, error event %v, err %v",
				s.Events, s.Done, s.ErrorEvent, s.Err)
		}
	}
	for _, s := range results {
		if s.Instance != victim.name && (s.Err != nil || !s.Done || s.ErrorEvent) {
			r.fail("a stream on another instance broke: %+v", s)
		}
	}
	r.extra("%d of %d streams on the deregistered instance completed whole (%d events each)", whole, onVictim, 23)
	// Convergence: the last non-streaming request to reach the instance.
	if err := e.waitPool(30*time.Second, func(in []instanceView) bool { return !hasAddr(in, victim.addr) }); err != nil {
		return err
	}
	time.Sleep(time.Second) // load keeps flowing: any straggler shows up
	var last time.Time
	for _, x := range l.snapshot() {
		if x.Instance == victim.name && x.Sent.After(t0) && x.Sent.After(last) {
			last = x.Sent
		}
	}
	r.Recover, r.RecoverWhat = 0, "last request to the deregistered instance after"
	if !last.IsZero() {
		r.Recover = last.Sub(t0)
	}
	return nil
}

// hung: one instance accepts connections and never answers; the route's
// 2 s timeout and retries must hide it, and its breaker must open.
func (e *env) hung(r *Result, l *load, fault time.Time) error {
	return harness.Post(e.mocks["m2"].ctl + "mode?m=hang")
}

func (e *env) hungFigures(r *Result, replies []harness.Reply, fault time.Time) {
	_, arrivals, err := e.completions()
	if err != nil {
		r.fail("read the mocks' logs: %v", err)
		return
	}
	var hit []time.Time
	for _, t := range arrivals["m2"] {
		if t.After(fault) {
			hit = append(hit, t)
		}
	}
	slow := 0
	var lastSlow time.Time
	for _, x := range replies {
		if x.Sent.After(fault) && x.Latency > time.Second {
			slow++
			if x.Sent.After(lastSlow) {
				lastSlow = x.Sent
			}
		}
	}
	r.Recover, r.RecoverWhat = 0, "last request delayed by the hang (>1 s) sent after"
	if !lastSlow.IsZero() {
		r.Recover = lastSlow.Sub(fault)
	}
	pool, _ := e.pool()
	breaker := "?"
	for _, in := range pool {
		if in.Addr == e.mocks["m2"].addr {
			breaker = in.Breaker
		}
	}
	r.extra("requests that reached the hung instance %d, client requests delayed > 1 s %d, max latency %v, its breaker now %s",
		len(hit), slow, maxLatency(replies, fault).Round(time.Millisecond), breaker)
}

// nacosRestart: Nacos stops and starts again under load; requests keep
// being served from the last known pool, the instances re-register, and a
// new instance is discovered.
func (e *env) nacosRestart(r *Result, l *load, fault time.Time) error {
	down, err := harness.NacosDown(e.o.NacosPort)
	if err != nil {
		return err
	}
	poolDuring, _ := e.pool()
	up, err := harness.NacosUp(e.o.NacosPort)
	if err != nil {
		return err
	}
	ready := time.Now()
	r.extra("Nacos stopped in %v, back after %v; instances in modelgate's pool while it was down: %d",
		down.Round(100*time.Millisecond), up.Round(100*time.Millisecond), len(poolDuring))
	if len(poolDuring) != 3 {
		r.fail("modelgate's pool held %d instances while Nacos was down, want 3", len(poolDuring))
	}
	if err := e.startMock("m4"); err != nil {
		return err
	}
	at, err := l.waitReply("m4", ready, 60*time.Second)
	if err != nil {
		r.fail("%v", err)
		return nil
	}
	r.Recover, r.RecoverWhat = at.Sub(ready), "Nacos ready → first reply from an instance registered after the restart"
	// The instances registered before the restart register again by
	// themselves (their SDK redoes it): all four must end up in the pool.
	if err := e.waitPool(60*time.Second, func(in []instanceView) bool { return len(in) == 4 }); err != nil {
		r.fail("after the restart: %v", err)
		return nil
	}
	r.extra("all 4 instances in modelgate's pool %v after Nacos was ready", time.Since(ready).Round(100*time.Millisecond))
	return nil
}
