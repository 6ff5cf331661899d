package perf

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelgate/modelgate/bench/harness"
)

var registeredRe = regexp.MustCompile(`mock (registered)`)

// convergeWindow is how long load runs after each deregistration before the
// replies are read; the last request to reach the old instance must fall
// inside it.
const convergeWindow = 3 * time.Second

// convergence times, with a real Nacos, how long after a deregistration
// requests still reach the old instance: two mocks register themselves,
// modelgate discovers them, load runs at concurrency 4, and instance b is
// deregistered and registered again ConvRounds times.
func (e *env) convergence(rep *Report) error {
	group := "BENCHCONV_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ctl := map[string]string{}
	for _, name := range []string{"conv-a", "conv-b"} {
		p, addr, err := harness.StartListener(name, e.bins.Mock, []string{"-name", name, "-latency", "5ms",
			"-nacos", e.o.NacosAddr, "-group", group, "-service", "conv",
			"-nacos-dir", filepath.Join(e.o.Dir, name+"-nacos")}, e.opts(false))
		if err != nil {
			return err
		}
		e.procs = append(e.procs, p)
		if _, err := p.WaitLine(registeredRe, 60*time.Second); err != nil {
			return err
		}
		ctl[name] = "http://" + addr + "/_mock/"
	}
	cfg := fmt.Sprintf("log_level: warn\ndiscovery:\n  nacos:\n    servers: [%q]\n    groups: [%s]\n    cache_dir: %s\nroutes:\n  - model: conv\n",
		e.o.NacosAddr, group, filepath.Join(e.o.Dir, "nacos-cache"))
	mg, addr, _, err := e.startModelgate("modelgate-nacos", cfg)
	if err != nil {
		return err
	}
	if rep.IdleRSSNacos, err = mg.RSS(); err != nil {
		return err
	}

	var mu sync.Mutex
	var replies []harness.Reply
	var stop atomic.Bool
	var wg sync.WaitGroup
	defer func() { stop.Store(true); wg.Wait() }()
	hc := harness.NewClient(addr, false)
	var seq atomic.Int64
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				r := harness.Chat(hc, "conv", "conv-"+strconv.FormatInt(seq.Add(1), 10), 10*time.Second)
				mu.Lock()
				replies = append(replies, r)
				mu.Unlock()
			}
		})
	}
	// served waits until b answers a request sent after since.
	served := func(since time.Time) error {
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
			mu.Lock()
			for _, r := range replies {
				if r.Instance == "conv-b" && r.Sent.After(since) {
					mu.Unlock()
					return nil
				}
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond) // polling the load's own records
		}
		return fmt.Errorf("conv-b got no request within 60s of %v", since)
	}
	if err := served(time.Time{}); err != nil {
		return err
	}
	for range e.o.ConvRounds {
		t0 := time.Now()
		if err := harness.Post(ctl["conv-b"] + "deregister"); err != nil {
			return err
		}
		time.Sleep(convergeWindow) // the measurement window: load keeps flowing
		var last time.Time
		mu.Lock()
		for _, r := range replies {
			if r.Instance == "conv-b" && r.Sent.After(t0) && r.Sent.After(last) {
				last = r.Sent
			}
		}
		mu.Unlock()
		conv := time.Duration(0)
		if !last.IsZero() {
			conv = last.Sub(t0)
		}
		rep.Convergence = append(rep.Convergence, conv)
		mu.Lock()
		bad := 0
		for _, r := range replies {
			if r.Sent.After(t0) && r.Status != 200 {
				bad++
			}
		}
		mu.Unlock()
		e.logf("errors since this deregistration: %d", bad)
		e.logf("deregistered conv-b: last request to it %v later", conv)
		t1 := time.Now()
		if err := harness.Post(ctl["conv-b"] + "register"); err != nil {
			return err
		}
		if err := served(t1); err != nil {
			return err
		}
	}
	stop.Store(true)
	wg.Wait()
	// Errors before modelgate's first good reply are counted apart: they
	// are requests sent after /readyz said ready, not convergence.
	rep.ConvErrorKinds = map[string]int{}
	var firstOK time.Time
	for _, r := range replies {
		if r.Status == 200 && (firstOK.IsZero() || r.Sent.Before(firstOK)) {
			firstOK = r.Sent
		}
	}
	for _, r := range replies {
		if r.Status != 200 || r.Mismatch {
			kind := fmt.Sprintf("status %d %s, mismatch %v, err %v", r.Status, r.Code, r.Mismatch, r.Err)
			if r.Sent.Before(firstOK) {
				rep.StartupErrors++
				kind = "right after /readyz: " + kind
			} else {
				rep.ConvErrors++
			}
			rep.ConvErrorKinds[kind]++
		}
	}
	return nil
}
