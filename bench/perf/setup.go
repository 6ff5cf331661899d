// Package perf is `make bench`: modelgate against a bare fasthttp proxy (the
// floor) and against no proxy at all (direct), in interleaved legs, as
// ../../shared/BENCH.md lays down. Run measures; Report.Markdown prints the
// figures.
package perf

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/modelgate/modelgate/bench/harness"
)

// Options shape a run.
type Options struct {
	// Leg is the length of one leg (BENCH_SECONDS). Default 4s.
	Leg time.Duration
	// Rounds of interleaved legs; figures are medians over rounds. Default 3.
	Rounds int
	// Streams are the levels of concurrent streams tried, in order, until
	// modelgate fails one (the floor goes on until it fails too). Default
	// 500, 1000, 2000, 4000, 8000.
	Streams []int
	// StreamChunks and StreamGap shape the streams held concurrently.
	// Defaults 40 and 50ms (2 s per stream, so that a level's streams
	// overlap however long the ramp-up takes).
	StreamChunks int
	StreamGap    time.Duration
	// NacosAddr is a running Nacos for the convergence figure; empty skips it.
	NacosAddr string
	// ConvRounds is how many deregistrations are timed. Default 3.
	ConvRounds int
	// Pin puts the processes under test on CPU 0 with GOMAXPROCS=1, the
	// mocks, wrk and this process on CPU 1; Spin runs the idle-priority
	// spinners during measurements.
	Pin, Spin bool
	// PinSelf also pins this process (the stream client) to CPU 1.
	PinSelf bool
	// Bins are prebuilt binaries; default: build them into Dir.
	Bins *harness.Bins
	// NoWarmup skips the warm-up legs (for the smoke test).
	NoWarmup bool
	// Dir holds binaries, configs and logs; default a temporary directory.
	Dir string
	// Log receives progress lines; default none.
	Log io.Writer
}

func (o *Options) defaults() {
	if o.Leg <= 0 {
		o.Leg = 4 * time.Second
	}
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if len(o.Streams) == 0 {
		o.Streams = []int{500, 1000, 2000, 4000, 8000}
	}
	if o.StreamChunks <= 0 {
		o.StreamChunks = 40
	}
	if o.StreamGap <= 0 {
		o.StreamGap = 50 * time.Millisecond
	}
	if o.ConvRounds <= 0 {
		o.ConvRounds = 3
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// env is the set of running processes.
type env struct {
	o      *Options
	bins   harness.Bins
	procs  []*harness.Proc
	cpuUT  string // CPU of the processes under test
	cpuAux string // CPU of mocks and load generators

	mockFast, mock20, mockStream string // addresses
	ctlStream                    string
	mg                           *harness.Proc
	mgAddr, mgAdmin              string
	floors                       map[string]*harness.Proc // by mock: fast, slow, stream
	floorAddr                    map[string]string
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.o.Log, "bench: "+format+"\n", args...)
}

func (e *env) close() {
	for i := len(e.procs) - 1; i >= 0; i-- {
		e.procs[i].Stop(5 * time.Second)
	}
}

func (e *env) opts(undertest bool) harness.Opts {
	o := harness.Opts{LogDir: e.o.Dir}
	if !e.o.Pin {
		return o
	}
	if undertest {
		o.CPU, o.GOMAXPROCS = e.cpuUT, 1
	} else {
		o.CPU = e.cpuAux
	}
	return o
}

func (e *env) startMock(name string, args ...string) (string, error) {
	p, addr, err := harness.StartListener(name, e.bins.Mock, append([]string{"-name", name}, args...), e.opts(false))
	if err != nil {
		return "", err
	}
	e.procs = append(e.procs, p)
	return addr, nil
}

func (e *env) startFloor(name, upstream string) (*harness.Proc, string, error) {
	p, addr, err := harness.StartListener(name, e.bins.Floor, []string{"-upstream", upstream}, e.opts(true))
	if err != nil {
		return nil, "", err
	}
	e.procs = append(e.procs, p)
	return p, addr, nil
}

// startModelgate runs the daemon with config (listen and admin filled in)
// and waits until it is ready.
func (e *env) startModelgate(name, config string) (*harness.Proc, string, string, error) {
	api, admin := harness.FreeAddr(), harness.FreeAddr()
	path := filepath.Join(e.o.Dir, name+".yaml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		return nil, "", "", err
	}
	o := e.opts(true)
	o.DiscardStdout = true // the access log, one line per request: written, as in production, but not kept
	p, err := harness.Start(name, e.bins.Modelgate, []string{"-config", path, "-listen", api, "-admin", admin}, o)
	if err != nil {
		return nil, "", "", err
	}
	e.procs = append(e.procs, p)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := harness.WaitHTTP(ctx, "http://"+admin+"/readyz"); err != nil {
		return nil, "", "", fmt.Errorf("%s: %w: %s", name, err, p.Output())
	}
	return p, api, admin, nil
}

func setup(o *Options) (*env, error) {
	e := &env{o: o, cpuUT: "0", cpuAux: "1", floors: map[string]*harness.Proc{}, floorAddr: map[string]string{}}
	var err error
	if o.Bins != nil {
		e.bins = *o.Bins
	} else {
		e.logf("building modelgate, mock and floor")
		if e.bins, err = harness.Build(o.Dir); err != nil {
			return nil, err
		}
	}
	ok := false
	defer func() {
		if !ok {
			e.close()
		}
	}()
	if e.mockFast, err = e.startMock("mock-fast"); err != nil {
		return nil, err
	}
	if e.mock20, err = e.startMock("mock-20ms", "-latency", "20ms"); err != nil {
		return nil, err
	}
	if e.mockStream, err = e.startMock("mock-stream", "-chunks", "20", "-gap", "1ms"); err != nil {
		return nil, err
	}
	e.ctlStream = "http://" + e.mockStream + "/_mock/"
	for name, up := range map[string]string{"fast": e.mockFast, "slow": e.mock20, "stream": e.mockStream} {
		p, addr, err := e.startFloor("floor-"+name, up)
		if err != nil {
			return nil, err
		}
		e.floors[name], e.floorAddr[name] = p, addr
	}
	pool := filepath.Join(o.Dir, "pool.yaml")
	var b strings.Builder
	b.WriteString("instances:\n")
	for svc, addr := range map[string]string{"fast": e.mockFast, "slow": e.mock20, "stream": e.mockStream} {
		fmt.Fprintf(&b, "  - {service: %s, addr: %q}\n", svc, addr)
	}
	if err := os.WriteFile(pool, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf("log_level: warn\ndiscovery:\n  static: %s\nroutes:\n  - model: fast\n  - model: slow\n  - model: stream\n", pool)
	if e.mg, e.mgAddr, e.mgAdmin, err = e.startModelgate("modelgate", cfg); err != nil {
		return nil, err
	}
	ok = true
	return e, nil
}
