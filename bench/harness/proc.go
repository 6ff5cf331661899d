// Package harness runs the processes of modelgate's end-to-end benchmarks
// and chaos runs: it builds the binaries, starts them pinned to CPUs, reads
// their CPU time and memory from /proc, drives wrk and streaming clients,
// and starts and stops a real Nacos.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Root is the repository root: from this file's path, or (in a -trimpath
// build) from the go.mod of the working directory's module.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	if filepath.IsAbs(file) {
		return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	}
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if mod := strings.TrimSpace(string(out)); filepath.IsAbs(mod) {
			return filepath.Dir(mod)
		}
	}
	return "."
}

// Bins are the built binaries.
type Bins struct {
	Dir, Modelgate, Mock, Floor string
}

// Build builds modelgate, the mock and the floor proxy into dir (not with
// -race: these are the processes under measurement).
func Build(dir string) (Bins, error) {
	b := Bins{Dir: dir, Modelgate: filepath.Join(dir, "modelgate"), Mock: filepath.Join(dir, "mock"),
		Floor: filepath.Join(dir, "floor")}
	for _, t := range []struct{ out, pkg string }{
		{b.Modelgate, "./cmd/modelgate"}, {b.Mock, "./bench/mock"}, {b.Floor, "./bench/floor"},
	} {
		cmd := exec.Command("go", "build", "-o", t.out, t.pkg)
		cmd.Dir = Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %w\n%s", t.pkg, err, out)
		}
	}
	return b, nil
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Opts configures a process.
type Opts struct {
	// CPU pins the process (taskset -c CPU) when not empty.
	CPU string
	// GOMAXPROCS is set in its environment when > 0.
	GOMAXPROCS int
	// Env is added to its environment.
	Env []string
	// LogDir receives NAME.log with its output; default: discarded.
	LogDir string
	// Discard sends stdout to /dev/null (modelgate's access log), keeping
	// stderr.
	DiscardStdout bool
}

// Proc is a started process.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu    sync.Mutex
	lines []string
	wake  chan struct{}
}

// Start starts bin with args.
func Start(name, bin string, args []string, o Opts) (*Proc, error) {
	argv := append([]string{bin}, args...)
	if o.CPU != "" {
		argv = append([]string{"taskset", "-c", o.CPU}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = os.Environ()
	if o.GOMAXPROCS > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(o.GOMAXPROCS))
	}
	cmd.Env = append(cmd.Env, o.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{}), wake: make(chan struct{})}
	var sinks []io.Writer
	sinks = append(sinks, p)
	if o.LogDir != "" {
		f, err := os.Create(filepath.Join(o.LogDir, name+".log"))
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, f)
	}
	w := io.MultiWriter(sinks...)
	cmd.Stderr = w
	if !o.DiscardStdout {
		cmd.Stdout = w
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Write collects output lines for WaitLine.
func (p *Proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
		if len(p.lines) < 1000 {
			p.lines = append(p.lines, string(l))
		}
	}
	close(p.wake)
	p.wake = make(chan struct{})
	return len(b), nil
}

// WaitLine waits until an output line matches re and returns the match's
// first group (or the whole match).
func (p *Proc) WaitLine(re *regexp.Regexp, within time.Duration) (string, error) {
	deadline := time.After(within)
	for seen := 0; ; {
		p.mu.Lock()
		lines, wake := p.lines, p.wake
		p.mu.Unlock()
		for ; seen < len(lines); seen++ {
			if m := re.FindStringSubmatch(lines[seen]); m != nil {
				return m[len(m)-1], nil
			}
		}
		select {
		case <-wake:
		case <-p.done:
			return "", fmt.Errorf("%s exited (%v) before printing %s: %s", p.Name, p.err, re, p.Output())
		case <-deadline:
			return "", fmt.Errorf("%s did not print %s within %v: %s", p.Name, re, within, p.Output())
		}
	}
}

// Output returns the last output lines.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines := p.lines
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// PID is the process ID (taskset execs the binary, so it is the binary's).
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM, and SIGKILL after grace.
func (p *Proc) Stop(grace time.Duration) {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill()
	}
}

// ClockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat.
const ClockTicks = 100

// CPU returns the process's user + system CPU time so far.
func (p *Proc) CPU() (time.Duration, error) { return CPUOf(p.PID()) }

// CPUOf returns utime+stime of pid from /proc/PID/stat.
func CPUOf(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: split after it.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	// Fields after the name start at field 3 (state): utime is field 14.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / ClockTicks, nil
}

// RSS returns the process's resident set size in bytes.
func (p *Proc) RSS() (int64, error) { return RSSOf(p.PID()) }

// RSSOf returns VmRSS of pid from /proc/PID/status.
func RSSOf(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// RSSSampler records the peak RSS of a process until stopped.
type RSSSampler struct {
	stop chan struct{}
	done chan struct{}
	peak int64
}

// SampleRSS samples pid's RSS every interval.
func SampleRSS(pid int, interval time.Duration) *RSSSampler {
	s := &RSSSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if r, err := RSSOf(pid); err == nil && r > s.peak {
				s.peak = r
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak.
func (s *RSSSampler) Stop() int64 {
	close(s.stop)
	<-s.done
	return s.peak
}

// PinSelf pins every thread of this process to cpus (taskset -a -p).
func PinSelf(cpus string) error {
	out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset: %w: %s", err, out)
	}
	return nil
}

// Spinners keep CPUs busy at idle priority, so that a KVM guest's idle CPUs
// do not take ~1 ms to wake during a measurement (../../shared/BENCH.md).
type Spinners struct{ procs []*exec.Cmd }

// Spin starts one idle-priority spinner per CPU in cpus.
func Spin(cpus ...int) (*Spinners, error) {
	s := &Spinners{}
	for _, c := range cpus {
		cmd := exec.Command("taskset", "-c", strconv.Itoa(c), "chrt", "--idle", "0", "sh", "-c", "while :; do :; done")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			s.Stop()
			return nil, err
		}
		s.procs = append(s.procs, cmd)
	}
	return s, nil
}

// Stop kills the spinners.
func (s *Spinners) Stop() {
	if s == nil {
		return
	}
	for _, c := range s.procs {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
	s.procs = nil
}

// WaitHTTP polls url until it answers 200.
func WaitHTTP(ctx context.Context, url string) error {
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := c.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: last error %v", url, err)
		case <-time.After(50 * time.Millisecond): // polling a process we do not control
		}
	}
}

// Post sends a control request and fails on any status but 200.
func Post(url string) error {
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Post(url, "text/plain", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, body)
	}
	return nil
}

// Get fetches url and returns its body.
func Get(url string) ([]byte, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, err
}

var listeningRe = regexp.MustCompile(`listening (\S+)`)

// StartListener starts a mock or floor binary and returns it with the
// address it printed.
func StartListener(name, bin string, args []string, o Opts) (*Proc, string, error) {
	p, err := Start(name, bin, args, o)
	if err != nil {
		return nil, "", err
	}
	addr, err := p.WaitLine(listeningRe, 30*time.Second)
	if err != nil {
		p.Kill()
		return nil, "", err
	}
	return p, addr, nil
}

// LoadAvg returns the 1, 5 and 15-minute load averages of /proc/loadavg.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// Machine describes this machine: CPUs and model name.
func Machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs, %s, %s", runtime.NumCPU(), model, runtime.Version())
}

// RaiseFDLimit raises this process's open-file limit (soft, and hard when
// allowed) to at least n, for the thousands of connections of the stream
// tests; the processes it starts inherit it. It returns the soft limit in
// force.
func RaiseFDLimit(n uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur >= n {
		return lim.Cur, nil
	}
	want := lim
	want.Cur = n
	if want.Max < n {
		want.Max = n
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		// Not allowed to raise the hard limit: take what it allows.
		want = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return lim.Cur, err
		}
	}
	return want.Cur, nil
}
