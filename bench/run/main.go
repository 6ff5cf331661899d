// Command run drives modelgate's end-to-end benchmarks and chaos runs:
//
//	go run ./bench/run bench   # make bench: every figure of shared/BENCH.md
//	go run ./bench/run chaos   # make chaos: faults under steady load
//	go run ./bench/run scale   # make bench-scale: 10,000 instances in a private Nacos
//
// Both build modelgate, the mock and the floor proxy, start them as
// processes of their own, and stop everything they started, Nacos included.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/modelgate/modelgate/bench/chaos"
	"github.com/modelgate/modelgate/bench/harness"
	"github.com/modelgate/modelgate/bench/perf"
	"github.com/modelgate/modelgate/bench/scale"
)

func main() {
	cmds := map[string]func([]string) error{"bench": bench, "chaos": runChaos, "scale": runScale}
	if len(os.Args) < 2 || cmds[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: run bench|chaos|scale [flags]")
		os.Exit(2)
	}
	err := cmds[os.Args[1]](os.Args[2:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		os.Exit(1)
	}
}

func envDuration(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil {
			return time.Duration(s * float64(time.Second))
		}
	}
	return def
}

// withNacos starts a Nacos on port unless one answers there already, and
// stops it at the end (also on Ctrl-C) if it started it.
func withNacos(port int, f func(addr string, ours bool) error) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		fmt.Printf("using the Nacos already on %s\n", addr)
		return f(addr, false)
	}
	fmt.Printf("starting Nacos on %s\n", addr)
	took, err := harness.NacosUp(port)
	if err != nil {
		return err
	}
	fmt.Printf("Nacos ready after %v\n", took.Round(time.Second))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		_, _ = harness.NacosDown(port)
		os.Exit(130)
	}()
	defer func() { _, _ = harness.NacosDown(port) }()
	return f(addr, true)
}

func bench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	leg := fs.Duration("leg", envDuration("BENCH_SECONDS", 4*time.Second), "length of one leg (env BENCH_SECONDS, in seconds)")
	rounds := fs.Int("rounds", 3, "interleaved rounds")
	streams := fs.String("streams", "500,1000,2000,4000,8000", "levels of concurrent streams, tried until one fails")
	nacosPort := fs.Int("nacos-port", 18878, "port of the Nacos for the convergence figure; 0 skips it")
	noSpin := fs.Bool("no-spin", false, "do not run the idle-priority spinners")
	fs.Parse(args)
	o := perf.Options{Leg: *leg, Rounds: *rounds, Pin: true, PinSelf: true, Spin: !*noSpin, Log: os.Stdout}
	for s := range strings.SplitSeq(*streams, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("-streams: %w", err)
		}
		o.Streams = append(o.Streams, n)
	}
	run := func(addr string, _ bool) error {
		o.NacosAddr = addr
		rep, err := perf.Run(o)
		if err != nil {
			return err
		}
		fmt.Println()
		fmt.Println(rep.Markdown())
		return nil
	}
	if *nacosPort == 0 {
		return run("", false)
	}
	return withNacos(*nacosPort, run)
}

func runChaos(args []string) error {
	fs := flag.NewFlagSet("chaos", flag.ExitOnError)
	d := fs.Duration("duration", 20*time.Second, "load per scenario")
	rate := fs.Int("rate", 200, "requests per second")
	nacosPort := fs.Int("nacos-port", 18888, "port of the private Nacos (it is stopped and restarted)")
	only := fs.String("only", "", "comma-separated scenarios to run (default all)")
	fs.Parse(args)
	return withNacos(*nacosPort, func(addr string, ours bool) error {
		o := chaos.Options{NacosAddr: addr, NacosPort: *nacosPort, Duration: *d, Rate: *rate, Log: os.Stdout}
		if !ours {
			fmt.Println("not restarting a Nacos this run did not start: skipping nacos-restart")
			o.NacosPort = 0
		}
		if *only != "" {
			o.Only = strings.Split(*only, ",")
		}
		results, err := chaos.Run(o)
		if err != nil {
			return err
		}
		fmt.Println()
		failed := 0
		for _, r := range results {
			fmt.Println(r.Line())
			if !r.OK {
				failed++
			}
		}
		fmt.Println()
		fmt.Println(chaos.Markdown(o, results))
		if failed > 0 {
			return fmt.Errorf("%d of %d chaos scenarios failed", failed, len(results))
		}
		return nil
	})
}

// runScale starts a private Nacos on a free port (never the shared test
// server: it is loaded with thousands of instances), runs bench/scale
// against it and prints the figures.
func runScale(args []string) error {
	fs := flag.NewFlagSet("scale", flag.ExitOnError)
	services := fs.Int("services", 500, "services")
	per := fs.Int("per-service", 20, "instances per service")
	changes := fs.Int("changes", 1000, "changes in the burst")
	idle := fs.Duration("idle", 60*time.Second, "idle window")
	registrars := fs.Int("registrars", 10, "SDK clients registering the instances")
	subscribers := fs.Int("subscribers", 10, "more subscribers (SDK clients that read after each push, as replicas) for a second burst; 0 skips it")
	nacosPort := fs.Int("nacos-port", 0, "HTTP port of the private Nacos; 0 picks a free one")
	fs.Parse(args)
	port := *nacosPort
	if port == 0 {
		p, err := harness.FreeNacosPort()
		if err != nil {
			return err
		}
		port = p
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second); err == nil {
		c.Close()
		return fmt.Errorf("something already listens on port %d: the scale run loads only a Nacos of its own", port)
	}
	return withNacos(port, func(addr string, _ bool) error {
		pid, err := harness.NacosPID(port)
		if err != nil {
			fmt.Println("Nacos process not found, its figures are left out:", err)
		}
		rep, err := scale.Run(scale.Options{NacosAddr: addr, NacosPID: pid, Services: *services, PerService: *per,
			Changes: *changes, Idle: *idle, Registrars: *registrars, Subscribers: *subscribers, Log: os.Stdout})
		if err != nil {
			return err
		}
		fmt.Println()
		fmt.Println(rep.Markdown())
		return nil
	})
}
