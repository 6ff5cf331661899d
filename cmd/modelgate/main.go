// Command modelgate is the modelgate daemon: one OpenAI-compatible endpoint
// in front of self-hosted model servers discovered in Nacos.
//
//	modelgate [serve] -config modelgate.yaml   serve (the default subcommand)
//	modelgate check -config FILE               validate a config file
//	modelgate demo                             serve an embedded pool of mock models
//	modelgate version                          print the version and commit
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	_ "github.com/modelgate/modelgate/internal/quietinit" // before VictoriaMetrics/metrics logs at init
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// subcommands in the order usage lists them.
var subcommands = []struct{ name, help string }{
	{"serve", "serve the API and admin listeners (the default)"},
	{"check", "validate a config file exactly as serve does, then exit"},
	{"demo", "serve an embedded pool of mock models (no Nacos)"},
	{"version", "print the module version and commit"},
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "Usage: modelgate [serve|check|demo|version] [flags]")
	fmt.Fprintln(w, "\nSubcommands:")
	for _, c := range subcommands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.help)
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("modelgate "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "modelgate.yaml", "config file (serve, check)")
	listen := fs.String("listen", "", "API listen address, overrides the config (serve, demo)")
	admin := fs.String("admin", "", "admin listen address, overrides the config (serve, demo)")
	envOptional := fs.Bool("env-optional", false, "check: an unset ${VAR} is not an error (for CI without secrets)")
	known := false
	for _, c := range subcommands {
		known = known || c.name == cmd
	}
	if !known {
		fmt.Fprintf(stderr, "modelgate: unknown subcommand %q\n\n", cmd)
		usage(stderr, fs)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, fs)
			return 0
		}
		fmt.Fprintf(stderr, "modelgate %s: %v\n\n", cmd, err)
		usage(stderr, fs)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "modelgate %s: unexpected argument %q\n\n", cmd, fs.Arg(0))
		usage(stderr, fs)
		return 2
	}
	var err error
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, versionString())
	case "demo":
		err = runDemo(ctx, *listen, *admin, stdout)
	case "check":
		if _, err = loadConfigOpts(*path, *envOptional); err == nil {
			fmt.Fprintf(stdout, "%s: ok\n", *path)
		}
	default:
		err = serve(ctx, *path, *listen, *admin)
	}
	if err != nil {
		if cmd == "check" {
			fmt.Fprintln(stderr, err) // one "file:line: mistake" per line
		} else {
			fmt.Fprintln(stderr, "modelgate:", err)
		}
		return 1
	}
	return 0
}

// versionString is "modelgate VERSION (commit REV[, modified])" from the
// binary's build info.
func versionString() string {
	version, commit, dirty := "(devel)", "unknown", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if dirty {
		commit += ", modified"
	}
	return fmt.Sprintf("modelgate %s (commit %s)", version, commit)
}

func serve(ctx context.Context, path, listen, admin string) error {
	d, err := prepare(path, listen, admin)
	if err != nil {
		return err
	}
	return d.run(ctx)
}

// prepare is serve up to running: the config loaded and validated exactly
// as check does it, the daemon built and its listeners bound.
func prepare(path, listen, admin string) (*daemon, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	override(cfg, listen, admin)
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	return newDaemon(cfg, path, raw, nil, log)
}

func override(cfg *Config, listen, admin string) {
	if listen != "" {
		cfg.Listen = listen
	}
	if admin != "" {
		cfg.Admin.Listen = admin
	}
}
