// Command modelgate is the modelgate daemon: one OpenAI-compatible endpoint
// in front of self-hosted model servers discovered in Nacos.
//
//	modelgate -config modelgate.yaml   serve
//	modelgate demo                     serve an embedded pool of mock models
//	modelgate check -config FILE       validate a config file
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := "serve"
	if len(args) > 0 && (args[0] == "demo" || args[0] == "check" || args[0] == "serve") {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("modelgate "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "modelgate.yaml", "config file")
	listen := fs.String("listen", "", "API listen address (overrides the config)")
	admin := fs.String("admin", "", "admin listen address (overrides the config)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	switch cmd {
	case "demo":
		err = runDemo(ctx, *listen, *admin, stdout)
	case "check":
		if _, err = loadConfig(*path); err == nil {
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

func serve(ctx context.Context, path, listen, admin string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	override(cfg, listen, admin)
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	d, err := newDaemon(cfg, path, raw, nil, log)
	if err != nil {
		return err
	}
	return d.run(ctx)
}

func override(cfg *Config, listen, admin string) {
	if listen != "" {
		cfg.Listen = listen
	}
	if admin != "" {
		cfg.Admin.Listen = admin
	}
}
