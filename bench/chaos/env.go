// Package chaos is `make chaos`: faults injected under steady load into
// instances registered in a real Nacos, with modelgate as a process of its
// own configured with retries. Each scenario reports one line
// "chaos: NAME ok|FAIL" with its figures.
package chaos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelgate/modelgate/bench/harness"
)

// Options shape a run.
type Options struct {
	// NacosAddr is the Nacos the instances register in.
	NacosAddr string
	// NacosPort is its port, for the restart scenario, which stops and
	// starts it with scripts/nacos-down.sh and nacos-up.sh. 0 skips that
	// scenario.
	NacosPort int
	// Duration of the load in each scenario (default 20s); faults start a
	// quarter of the way in.
	Duration time.Duration
	// Rate of requests per second (default 200).
	Rate int
	// Only runs these scenarios (default: all).
	Only []string
	// SlowShareGoal is the share of requests the slow instance may still get
	// in the second half of the run after it slowed down (default 0.15).
	SlowShareGoal float64
	// Bins are prebuilt binaries; default: build them into Dir.
	Bins *harness.Bins
	// Dir holds binaries, configs, logs; default a temporary directory.
	Dir string
	// Log receives progress lines; default none.
	Log io.Writer
}

func (o *Options) defaults() {
	if o.Duration <= 0 {
		o.Duration = 20 * time.Second
	}
	if o.Rate <= 0 {
		o.Rate = 200
	}
	if o.SlowShareGoal <= 0 {
		o.SlowShareGoal = 0.15
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Scenarios, in the order they run (the Nacos restart last: it disturbs
// the registry for everyone).
var Scenarios = []string{"kill-instance", "slow-instance", "deregister-streaming", "hung-instance", "nacos-restart"}

// Result is one scenario's outcome.
type Result struct {
	Name string
	OK   bool
	// Sent requests; Errors got an HTTP error status; Lost got no HTTP
	// reply at all (or another request's); Dup were completed by two
	// instances.
	Sent, Errors, Lost, Dup int
	// Recover is the scenario's time to recover, described by RecoverWhat.
	Recover     time.Duration
	RecoverWhat string
	// Extra holds the scenario's own figures.
	Extra []string
	// Failures are the goals missed.
	Failures []string
}

// Line is the scenario's one-line summary.
func (r Result) Line() string {
	status := "ok"
	if !r.OK {
		status = "FAIL"
	}
	s := fmt.Sprintf("chaos: %s %s — sent %d, client errors %d, lost %d, answered twice %d, %s %v",
		r.Name, status, r.Sent, r.Errors, r.Lost, r.Dup, r.RecoverWhat, r.Recover.Round(time.Millisecond))
	if len(r.Extra) > 0 {
		s += "; " + strings.Join(r.Extra, "; ")
	}
	if len(r.Failures) > 0 {
		s += " — MISSED: " + strings.Join(r.Failures, "; ")
	}
	return s
}

func (r *Result) fail(format string, args ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

func (r *Result) extra(format string, args ...any) {
	r.Extra = append(r.Extra, fmt.Sprintf(format, args...))
}

// Run runs the scenarios and returns their results; an error means the
// run itself could not proceed.
func Run(o Options) ([]Result, error) {
	o.defaults()
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "modelgate-chaos-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		o.Dir = dir
	}
	if o.Bins == nil {
		fmt.Fprintln(o.Log, "chaos: building modelgate and mock")
		b, err := harness.Build(o.Dir)
		if err != nil {
			return nil, err
		}
		o.Bins = &b
	}
	var out []Result
	for _, name := range Scenarios {
		if len(o.Only) > 0 && !contains(o.Only, name) {
			continue
		}
		if name == "nacos-restart" && o.NacosPort == 0 {
			continue
		}
		fmt.Fprintf(o.Log, "chaos: %s...\n", name)
		r, err := runScenario(&o, name)
		if err != nil {
			return out, fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintln(o.Log, r.Line())
		out = append(out, r)
	}
	return out, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if strings.TrimSpace(y) == x {
			return true
		}
	}
	return false
}

// env is one scenario's processes: three mocks registered in Nacos and a
// modelgate discovering them.
type env struct {
	o     *Options
	name  string
	group string
	procs []*harness.Proc
	mocks map[string]*mock
	mg    *harness.Proc
	api   string
	admin string
}

type mock struct {
	name, addr, ctl, log string
	proc                 *harness.Proc
}

var registeredRe = regexp.MustCompile(`mock (registered)`)

func newEnv(o *Options, name string) (*env, error) {
	e := &env{o: o, name: name, mocks: map[string]*mock{},
		group: "CHAOS_" + strings.ReplaceAll(name, "-", "_") + "_" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	ok := false
	defer func() {
		if !ok {
			e.close()
		}
	}()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, m := range []string{"m1", "m2", "m3"} {
		wg.Go(func() { errs[i] = e.startMock(m) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	cfg := fmt.Sprintf(`log_level: warn
discovery:
  nacos:
    servers: [%q]
    groups: [%s]
    cache_dir: %s
routes:
  - model: chat
    retries: 2
    timeout: 2s
    first_byte_timeout: 2s
`, o.NacosAddr, e.group, filepath.Join(o.Dir, name+"-nacos-cache"))
	path := filepath.Join(o.Dir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	e.api, e.admin = harness.FreeAddr(), harness.FreeAddr()
	p, err := harness.Start(name+"-modelgate", o.Bins.Modelgate, []string{"-config", path, "-listen", e.api, "-admin", e.admin},
		harness.Opts{LogDir: o.Dir, DiscardStdout: true})
	if err != nil {
		return nil, err
	}
	e.mg = p
	e.procs = append(e.procs, p)
	if err := e.waitPool(60*time.Second, func(in []instanceView) bool { return len(in) == 3 }); err != nil {
		return nil, err
	}
	ok = true
	return e, nil
}

var mockMu sync.Mutex

func (e *env) startMock(name string) error {
	log := filepath.Join(e.o.Dir, e.name+"-"+name+".requests")
	p, addr, err := harness.StartListener(e.name+"-"+name, e.o.Bins.Mock, []string{"-name", name,
		"-latency", "20ms", "-chunks", "20", "-gap", "50ms", "-log", log,
		"-nacos", e.o.NacosAddr, "-group", e.group, "-service", "chat",
		"-nacos-dir", filepath.Join(e.o.Dir, e.name+"-"+name+"-nacos")}, harness.Opts{LogDir: e.o.Dir})
	if err != nil {
		return err
	}
	m := &mock{name: name, addr: addr, ctl: "http://" + addr + "/_mock/", log: log, proc: p}
	mockMu.Lock()
	e.mocks[name] = m
	e.procs = append(e.procs, p)
	mockMu.Unlock()
	if _, err := p.WaitLine(registeredRe, 60*time.Second); err != nil {
		return err
	}
	return nil
}

func (e *env) close() {
	for i := len(e.procs) - 1; i >= 0; i-- {
		e.procs[i].Stop(5 * time.Second)
	}
}

type instanceView struct {
	Addr    string `json:"addr"`
	Usable  bool   `json:"usable"`
	Breaker string `json:"breaker"`
}

// pool reads modelgate's view of the service's instances.
func (e *env) pool() ([]instanceView, error) {
	body, err := harness.Get("http://" + e.admin + "/admin/pool")
	if err != nil {
		return nil, err
	}
	var v struct {
		Services []struct {
			Service   string         `json:"service"`
			Instances []instanceView `json:"instances"`
		} `json:"services"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	for _, s := range v.Services {
		if s.Service == e.group+"@@chat" {
			return s.Instances, nil
		}
	}
	return nil, nil
}

// waitPool polls modelgate's pool until cond holds.
func (e *env) waitPool(within time.Duration, cond func([]instanceView) bool) error {
	deadline := time.Now().Add(within)
	var last []instanceView
	var err error
	for time.Now().Before(deadline) {
		if last, err = e.pool(); err == nil && cond(last) {
			return nil
		}
		time.Sleep(20 * time.Millisecond) // polling another process
	}
	return fmt.Errorf("modelgate's pool not as expected within %v: %+v (last error %v): %s", within, last, err, e.mg.Output())
}

func hasAddr(in []instanceView, addr string) bool {
	for _, i := range in {
		if i.Addr == addr {
			return true
		}
	}
	return false
}

// completions reads every mock's log: request ID → instances that
// completed it, and each instance's arrivals.
func (e *env) completions() (map[string]int, map[string][]time.Time, error) {
	done := map[string]int{}
	arrivals := map[string][]time.Time{}
	for name, m := range e.mocks {
		f, err := os.Open(m.log)
		if err != nil {
			return nil, nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) != 3 {
				continue
			}
			ns, _ := strconv.ParseInt(fields[1], 10, 64)
			switch fields[0] {
			case "c":
				done[fields[2]]++
			case "a":
				arrivals[name] = append(arrivals[name], time.Unix(0, ns))
			}
		}
		f.Close()
	}
	return done, arrivals, nil
}

// Markdown renders results as the table of BENCHMARKS.md.
func Markdown(o Options, results []Result) string {
	o.defaults()
	var b strings.Builder
	fmt.Fprintf(&b, "Run: `make chaos` (%d requests/s, %v of load per scenario), %s. Machine: %s.\n\n",
		o.Rate, o.Duration, time.Now().Format("2006-01-02 15:04 MST"), harness.Machine())
	b.WriteString("| scenario | result | sent | client errors | lost | answered twice | time to recover | figures |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		status := "ok"
		if !r.OK {
			status = "**FAIL**: " + strings.Join(r.Failures, "; ")
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %v (%s) | %s |\n", r.Name, status, r.Sent, r.Errors, r.Lost, r.Dup,
			r.Recover.Round(time.Millisecond), r.RecoverWhat, strings.Join(r.Extra, "; "))
	}
	return b.String()
}
