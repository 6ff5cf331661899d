// Package scale is `make bench-scale`: a modelgate daemon watching many
// instances in a real Nacos. It registers Services × PerService ephemeral
// instances (batch registration over the SDK's gRPC, as model servers
// register), starts the daemon, and measures the time to the full pool,
// its memory, its idle CPU and HTTP calls to Nacos, and how long after a
// burst of changes the last one reaches the pool.
//
// The daemon is watched through its own /metrics (modelgate_pool_instances
// by service and state, modelgate_nacos_http_requests_total), read twice
// per idle window and every PollEvery while waiting, so that the reading
// itself costs the daemon little.
package scale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"github.com/modelgate/modelgate/bench/harness"
)

// Options shape a run.
type Options struct {
	NacosAddr string // "127.0.0.1:PORT" of a running Nacos
	// NacosPID, when not 0, is the Nacos process: its RSS and CPU are
	// reported too.
	NacosPID   int
	Services   int // default 500
	PerService int // default 20
	// Changes is the size of the burst: that many instances disabled
	// through Nacos's admin API, spread round-robin over the services.
	// Default 1000; at most Services × PerService.
	Changes int
	// Registrars is how many SDK clients (gRPC connections) register the
	// instances, each a share of the services. Default 10.
	Registrars int
	// Idle is the window over which idle CPU and calls are measured.
	// Default 60s.
	Idle time.Duration
	// Settle is the wait between the full pool and the idle window, for
	// the start-up reads to end. Default 5s.
	Settle time.Duration
	// Subscribers, when not 0, adds a second burst (the same instances
	// enabled again) with that many more SDK clients subscribed to every
	// service, each reading a service's list after its push, as replicas
	// do: Nacos's cost of the push fan-out.
	Subscribers int
	// Writers is how many changes are in flight at once. Default 8.
	Writers int
	// PollEvery is how often /metrics is read while waiting (each read
	// costs a daemon with 10,000 instances ~10 ms of CPU). Default 250ms.
	PollEvery time.Duration
	// Bins are prebuilt binaries; default: build them into Dir.
	Bins *harness.Bins
	Dir  string // configs, logs, SDK files; default a temporary directory
	Log  io.Writer
}

func (o *Options) defaults() {
	if o.Services <= 0 {
		o.Services = 500
	}
	if o.PerService <= 0 {
		o.PerService = 20
	}
	if o.Changes <= 0 {
		o.Changes = 1000
	}
	o.Changes = min(o.Changes, o.Services*o.PerService)
	if o.Registrars <= 0 {
		o.Registrars = 10
	}
	o.Registrars = min(o.Registrars, o.Services)
	if o.Idle <= 0 {
		o.Idle = 60 * time.Second
	}
	if o.Settle <= 0 {
		o.Settle = 5 * time.Second
	}
	if o.Writers <= 0 {
		o.Writers = 8
	}
	if o.PollEvery <= 0 {
		o.PollEvery = 250 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Report holds the figures of a run.
type Report struct {
	Services, Instances, Changes int
	Registrars                   int
	Subscribers                  int
	Register                     time.Duration // all instances registered and listed by Nacos

	Ready    time.Duration // daemon start → /readyz 200
	FullPool time.Duration // daemon start → every instance usable in the pool

	RSS, Heap         int64 // daemon with the full pool, at the end of the idle window
	RSSBase, HeapBase int64 // the same daemon binary watching an empty group
	IdleWindow        time.Duration
	IdleCPU           float64 // cores, over the idle window
	IdleCPUBase       float64
	IdleCalls         float64 // HTTP calls to Nacos per second, over the idle window
	IdleCallsBase     float64

	Burst        BurstResult // Changes instances disabled
	BurstFanout  BurstResult // the same enabled again, with Subscribers more subscribers
	FanoutPushes int64       // pushes those subscribers received in it
	FanoutReads  int64       // and the reads they made after them
	// FanoutDone is the time from that burst's first change to the end of
	// every subscriber's reads; FanoutNacosCPU is Nacos's CPU time until then.
	FanoutDone      time.Duration
	FanoutNacosCPU  time.Duration
	NacosRSS        int64         // 0 when not measured
	NacosIdleCPU    float64       // cores, over the idle window
	Reads           int           // instance-list reads sent to Nacos after the burst, to price one
	NacosReadCPU    time.Duration // Nacos's CPU per read (0 when not measured)
	ReadsPerSecond  float64       // the rate those reads ran at, Writers at a time
	LoadBefore      string        // /proc/loadavg at the start
	LoadAfter       string        // and at the end
	Machine, Date   string
	NacosPIDKnown   bool
	daemonAdminAddr string
}

// Run registers the instances, measures, and removes everything it made.
func Run(o Options) (*Report, error) {
	o.defaults()
	if o.NacosAddr == "" {
		return nil, errors.New("scale: no Nacos address")
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "modelgate-bench-scale-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	logf := func(format string, args ...any) { fmt.Fprintf(o.Log, "scale: "+format+"\n", args...) }
	rep := &Report{Services: o.Services, Instances: o.Services * o.PerService, Changes: o.Changes,
		Registrars: o.Registrars, Subscribers: o.Subscribers, LoadBefore: harness.LoadAvg(), Machine: harness.Machine(),
		Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), NacosPIDKnown: o.NacosPID != 0}
	var bins harness.Bins
	if o.Bins != nil {
		bins = *o.Bins
	} else {
		logf("building modelgate")
		var err error
		if bins, err = harness.Build(o.Dir); err != nil {
			return nil, err
		}
	}
	group := "BENCHSCALE_" + strconv.FormatInt(time.Now().UnixNano(), 36)

	// The baseline daemon watches a group with no services, from the start.
	base, baseAdmin, err := startDaemon(bins, o.Dir, "modelgate-base", o.NacosAddr, group+"_EMPTY")
	if err != nil {
		return nil, err
	}
	defer base.Stop(10 * time.Second)

	logf("registering %d instances in %d services with %d SDK clients", rep.Instances, o.Services, o.Registrars)
	t0 := time.Now()
	regs, err := register(o, group)
	defer func() {
		for _, c := range regs {
			c.CloseClient() // ephemeral instances go with their connection
		}
	}()
	if err != nil {
		return nil, err
	}
	if err := waitListed(o, group); err != nil {
		return nil, err
	}
	rep.Register = time.Since(t0)
	logf("registered in %v", rep.Register.Round(time.Millisecond))

	start := time.Now()
	mg, admin, err := startDaemon(bins, o.Dir, "modelgate", o.NacosAddr, group)
	if err != nil {
		return nil, err
	}
	defer mg.Stop(10 * time.Second)
	rep.daemonAdminAddr = admin
	rep.Ready = time.Since(start)
	if _, err := waitPool(o, admin, group, rep.Instances, 10*time.Minute); err != nil {
		return nil, err
	}
	rep.FullPool = time.Since(start)
	logf("ready after %v, full pool after %v", rep.Ready.Round(time.Millisecond), rep.FullPool.Round(time.Millisecond))

	// Idle: let the start-up reads settle, then measure a quiet window.
	time.Sleep(o.Settle) // settling, not synchronisation: nothing is awaited
	idle := func(p *harness.Proc, addr string) (cpu time.Duration, calls float64, err error) {
		c, err := p.CPU()
		if err != nil {
			return 0, 0, err
		}
		m, err := readMetrics(addr, "")
		return c, m.calls, err
	}
	mc0, mk0, err := idle(mg, admin)
	if err != nil {
		return nil, err
	}
	bc0, bk0, err := idle(base, baseAdmin)
	if err != nil {
		return nil, err
	}
	nc0 := nacosCPU(o.NacosPID)
	w0 := time.Now()
	logf("idle window of %v", o.Idle)
	time.Sleep(o.Idle) // the measurement window
	mc1, mk1, err := idle(mg, admin)
	if err != nil {
		return nil, err
	}
	bc1, bk1, err := idle(base, baseAdmin)
	if err != nil {
		return nil, err
	}
	win := time.Since(w0)
	rep.IdleWindow = win
	rep.IdleCPU = (mc1 - mc0).Seconds() / win.Seconds()
	rep.IdleCPUBase = (bc1 - bc0).Seconds() / win.Seconds()
	rep.IdleCalls = (mk1 - mk0) / win.Seconds()
	rep.IdleCallsBase = (bk1 - bk0) / win.Seconds()
	rep.NacosIdleCPU = (nacosCPU(o.NacosPID) - nc0).Seconds() / win.Seconds()
	if rep.RSS, err = mg.RSS(); err != nil {
		return nil, err
	}
	if rep.RSSBase, err = base.RSS(); err != nil {
		return nil, err
	}
	m, _ := readMetrics(admin, group)
	rep.Heap = m.heap
	mb, _ := readMetrics(baseAdmin, "")
	rep.HeapBase = mb.heap
	if o.NacosPID != 0 {
		rep.NacosRSS, _ = harness.RSSOf(o.NacosPID)
	}
	logf("idle: %.4f cores, %.2f calls/s; RSS %.1f MB (empty group %.1f MB)", rep.IdleCPU, rep.IdleCalls,
		float64(rep.RSS)/(1<<20), float64(rep.RSSBase)/(1<<20))

	// The burst: Changes instances disabled.
	logf("burst of %d changes", o.Changes)
	if rep.Burst, err = runBurst(o, group, mg, admin, false, rep.Instances-o.Changes, m.calls); err != nil {
		return nil, err
	}
	logf("burst sent in %v; last change in the pool %v after its acknowledgement", rep.Burst.Send.Round(time.Millisecond),
		rep.Burst.ConvergeLast.Round(time.Millisecond))
	// The same instances enabled again, now with Subscribers more
	// subscribers of every service, each reading a service after its push
	// as a replica does: Nacos's cost of the fan-out.
	if o.Subscribers > 0 {
		logf("%d more subscribers of every service", o.Subscribers)
		subs, err := subscribe(o, group)
		defer subs.close()
		if err != nil {
			return nil, err
		}
		mm, err := readMetrics(admin, group)
		if err != nil {
			return nil, err
		}
		p0, r0, n0, b0 := subs.pushes.Load(), subs.reads.Load(), nacosCPU(o.NacosPID), time.Now()
		if rep.BurstFanout, err = runBurst(o, group, mg, admin, true, rep.Instances, mm.calls); err != nil {
			return nil, err
		}
		if err := subs.drain(10 * time.Minute); err != nil {
			return nil, err
		}
		rep.FanoutDone = time.Since(b0)
		rep.FanoutNacosCPU = nacosCPU(o.NacosPID) - n0
		rep.FanoutPushes, rep.FanoutReads = subs.pushes.Load()-p0, subs.reads.Load()-r0
		logf("with %d more subscribers: last change in the pool %v after its acknowledgement", o.Subscribers,
			rep.BurstFanout.ConvergeLast.Round(time.Millisecond))
	}
	if o.NacosPID != 0 {
		if err := priceReads(o, group, rep); err != nil {
			return nil, err
		}
	}
	rep.LoadAfter = harness.LoadAvg()
	return rep, nil
}

// BurstResult is one burst of changes.
type BurstResult struct {
	Send          time.Duration // first change sent → last change acknowledged by Nacos
	ConvergeLast  time.Duration // last change acknowledged → pool shows every change
	ConvergeBurst time.Duration // first change sent → pool shows every change
	Calls         uint64        // daemon's HTTP calls to Nacos from the burst's start to convergence
	CPU           float64       // daemon's cores over that time
	NacosCPU      float64       // Nacos's cores over that time (0 when not measured)
	NacosCPUTime  time.Duration // and its CPU time
}

// runBurst sets enabled on o.Changes instances and waits until the
// daemon's pool has want usable instances. calls is the daemon's count of
// HTTP calls before.
func runBurst(o Options, group string, mg *harness.Proc, admin string, enabled bool, want int, calls float64) (BurstResult, error) {
	var r BurstResult
	nb0 := nacosCPU(o.NacosPID)
	mb0, err := mg.CPU()
	if err != nil {
		return r, err
	}
	b0 := time.Now()
	var lastAck atomic.Int64
	burstErr := make(chan error, 1)
	go func() { burstErr <- burst(o, group, enabled, &lastAck) }()
	var conv time.Time
	var convCalls float64
	deadline := time.Now().Add(10 * time.Minute)
	sent := false
	for {
		if !sent {
			select {
			case err := <-burstErr:
				if err != nil {
					return r, err
				}
				sent = true
			default:
			}
		}
		mm, err := readMetrics(admin, group)
		if err == nil && mm.usable == want && sent {
			conv, convCalls = time.Now(), mm.calls
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("scale: %d usable instances 10 minutes after the burst, want %d", mm.usable, want)
		}
		time.Sleep(o.PollEvery) // polling the daemon's metrics
	}
	last := time.Unix(0, lastAck.Load())
	r.Send, r.ConvergeLast, r.ConvergeBurst = last.Sub(b0), conv.Sub(last), conv.Sub(b0)
	r.Calls = uint64(convCalls - calls)
	if mb1, err := mg.CPU(); err == nil {
		r.CPU = (mb1 - mb0).Seconds() / r.ConvergeBurst.Seconds()
	}
	r.NacosCPUTime = nacosCPU(o.NacosPID) - nb0
	r.NacosCPU = r.NacosCPUTime.Seconds() / r.ConvergeBurst.Seconds()
	return r, nil
}

func startDaemon(bins harness.Bins, dir, name, nacos, group string) (*harness.Proc, string, error) {
	api, admin := harness.FreeAddr(), harness.FreeAddr()
	cfg := fmt.Sprintf("log_level: warn\ndiscovery:\n  nacos:\n    servers: [%q]\n    groups: [%s]\n    cache_dir: %s\n    snapshot: \"off\"\nroutes:\n  - model: svc0000\n",
		nacos, group, filepath.Join(dir, name+"-nacos"))
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, "", err
	}
	p, err := harness.Start(name, bins.Modelgate, []string{"-config", path, "-listen", api, "-admin", admin},
		harness.Opts{LogDir: dir, DiscardStdout: true})
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := harness.WaitHTTP(ctx, "http://"+admin+"/readyz"); err != nil {
		p.Stop(5 * time.Second)
		return nil, "", fmt.Errorf("%s: %w: %s", name, err, p.Output())
	}
	return p, admin, nil
}

func svcName(i int) string { return fmt.Sprintf("svc%04d", i) }

// instance j of service i: a loopback address unique across the run.
func instAddr(o *Options, i, j int) (string, uint64) {
	n := i*o.PerService + j
	return fmt.Sprintf("127.0.%d.%d", 1+n/50000, 1+(n/250)%200), uint64(20000 + n%250)
}

// namingClient is an SDK naming client on o.NacosAddr with its files in
// o.Dir/name.
func namingClient(o Options, name string) (naming_client.INamingClient, error) {
	host, port, _ := strings.Cut(o.NacosAddr, ":")
	p, _ := strconv.ParseUint(port, 10, 16)
	dir := filepath.Join(o.Dir, name)
	c, err := clients.NewNamingClient(vo.NacosClientParam{
		ClientConfig: constant.NewClientConfig(constant.WithTimeoutMs(10000), constant.WithNotLoadCacheAtStart(true),
			constant.WithCacheDir(filepath.Join(dir, "cache")), constant.WithLogDir(filepath.Join(dir, "log")),
			constant.WithLogLevel("warn")),
		ServerConfigs: []constant.ServerConfig{*constant.NewServerConfig(host, p)},
	})
	if err != nil {
		return nil, fmt.Errorf("scale: naming client %s: %w", name, err)
	}
	// Wait for the connection: a request sent before it races with the
	// SDK's own redo of it on connect (nacos-sdk-go v2.3.5).
	for deadline := time.Now().Add(time.Minute); !c.ServerHealthy(); time.Sleep(50 * time.Millisecond) { // polling the SDK's state
		if time.Now().After(deadline) {
			c.CloseClient()
			return nil, fmt.Errorf("scale: naming client %s: not connected to %s within a minute", name, o.NacosAddr)
		}
	}
	return c, nil
}

// register batch-registers every instance, each SDK client a share of the
// services, and returns the clients (closing one removes its instances).
func register(o Options, group string) ([]naming_client.INamingClient, error) {
	var (
		mu      sync.Mutex
		regs    []naming_client.INamingClient
		firstEr error
		wg      sync.WaitGroup
	)
	for r := range o.Registrars {
		c, err := namingClient(o, fmt.Sprintf("registrar-%d", r))
		if err != nil {
			return regs, err
		}
		regs = append(regs, c)
		wg.Go(func() {
			for i := r; i < o.Services; i += o.Registrars {
				param := vo.BatchRegisterInstanceParam{ServiceName: svcName(i), GroupName: group}
				for j := range o.PerService {
					ip, port := instAddr(&o, i, j)
					param.Instances = append(param.Instances, vo.RegisterInstanceParam{Ip: ip, Port: port, Weight: 1,
						Enable: true, Healthy: true, Ephemeral: true, ServiceName: svcName(i), GroupName: group})
				}
				var err error
				for deadline := time.Now().Add(60 * time.Second); ; {
					var ok bool
					if ok, err = c.BatchRegisterInstance(param); ok && err == nil {
						break
					}
					if time.Now().After(deadline) {
						break
					}
					time.Sleep(200 * time.Millisecond) // the client may still be connecting: retry
				}
				if err != nil {
					mu.Lock()
					if firstEr == nil {
						firstEr = fmt.Errorf("scale: batch register %s: %w", svcName(i), err)
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return regs, firstEr
}

// waitListed waits until Nacos lists every service of group.
func waitListed(o Options, group string) error {
	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	q := url.Values{"groupName": {group}, "pageNo": {"1"}, "pageSize": {"1"}}
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := c.Get("http://" + o.NacosAddr + "/nacos/v1/ns/service/list?" + q.Encode())
		if err != nil {
			continue
		}
		var body struct {
			Count int `json:"count"`
		}
		err = jsonDecode(resp.Body, &body)
		resp.Body.Close()
		if err == nil && body.Count == o.Services {
			return nil
		}
	}
	return fmt.Errorf("scale: Nacos does not list the %d services of %s", o.Services, group)
}

// waitPool waits until the daemon's pool has want usable instances.
func waitPool(o Options, admin, group string, want int, within time.Duration) (metricsView, error) {
	var m metricsView
	var err error
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(o.PollEvery) {
		if m, err = readMetrics(admin, group); err == nil && m.usable == want {
			return m, nil
		}
	}
	return m, fmt.Errorf("scale: pool has %d usable instances after %v, want %d (%v)", m.usable, within, want, err)
}

// burst sets enabled on o.Changes instances through Nacos's admin API, Writers at
// a time, and records when the last acknowledgement arrived.
func burst(o Options, group string, enabled bool, lastAck *atomic.Int64) error {
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.Writers}}
	defer c.CloseIdleConnections()
	work := make(chan int)
	errs := make(chan error, o.Writers)
	var wg sync.WaitGroup
	for range o.Writers {
		wg.Go(func() {
			for k := range work {
				i, j := k%o.Services, k/o.Services
				ip, port := instAddr(&o, i, j)
				form := url.Values{"serviceName": {svcName(i)}, "groupName": {group}, "ip": {ip},
					"port": {strconv.FormatUint(port, 10)}, "ephemeral": {"true"}, "weight": {"1"}, "enabled": {strconv.FormatBool(enabled)}}
				req, _ := http.NewRequest(http.MethodPut, "http://"+o.NacosAddr+"/nacos/v3/admin/ns/instance", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := c.Do(req)
				if err != nil {
					errs <- err
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("scale: update %s %s:%d: %s: %s", svcName(i), ip, port, resp.Status, body)
					return
				}
				now := time.Now().UnixNano()
				for {
					old := lastAck.Load()
					if now <= old || lastAck.CompareAndSwap(old, now) {
						break
					}
				}
			}
		})
	}
	var err error
feed:
	for k := range o.Changes {
		select {
		case work <- k:
		case err = <-errs:
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}

// priceReads sends instance-list reads (the read a replica makes after a
// push, and the backstop's), Writers at a time, and records Nacos's CPU
// per read.
func priceReads(o Options, group string, rep *Report) error {
	rep.Reads = 4 * o.Services
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.Writers}}
	defer c.CloseIdleConnections()
	work := make(chan int)
	var failed atomic.Value
	var wg sync.WaitGroup
	for range o.Writers {
		wg.Go(func() {
			for k := range work {
				q := url.Values{"serviceName": {svcName(k % o.Services)}, "groupName": {group}, "healthyOnly": {"false"}}
				resp, err := c.Get("http://" + o.NacosAddr + "/nacos/v1/ns/instance/list?" + q.Encode())
				if err != nil {
					failed.Store(err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Store(fmt.Errorf("scale: read %s: %s", svcName(k%o.Services), resp.Status))
				}
			}
		})
	}
	c0, t0 := nacosCPU(o.NacosPID), time.Now()
	for k := range rep.Reads {
		work <- k
	}
	close(work)
	wg.Wait()
	rep.ReadsPerSecond = float64(rep.Reads) / time.Since(t0).Seconds()
	rep.NacosReadCPU = (nacosCPU(o.NacosPID) - c0) / time.Duration(rep.Reads)
	if err, ok := failed.Load().(error); ok {
		return err
	}
	return nil
}

func nacosCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	d, _ := harness.CPUOf(pid)
	return d
}
