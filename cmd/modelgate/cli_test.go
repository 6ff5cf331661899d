package main

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCLI runs the built binary as an operator would and checks exit codes
// and first lines: nothing (not even a library's log line at init) may come
// before the usage or the version.
func TestCLI(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "modelgate")
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	good := filepath.Join(dir, "good.yaml")
	pool := filepath.Join(dir, "pool.yaml")
	write(t, pool, "instances: []\n")
	write(t, good, "discovery: {static: "+pool+"}\nroutes: [{model: chat, service: qwen}]\n")
	bad := filepath.Join(dir, "bad.yaml")
	write(t, bad, "discovery: {static: "+pool+"}\nlog_level: verbose\n")
	// The version and commit are the ones the toolchain stamped: "(devel)"
	// and no commit in a git worktree, a pseudo-version and the commit in a
	// clean clone.
	version, commit := "(devel)", "unknown"
	if info, err := exec.Command("go", "version", "-m", bin).Output(); err == nil {
		for line := range strings.Lines(string(info)) {
			f := strings.Fields(line)
			if len(f) >= 3 && f[0] == "mod" && f[2] != "(devel)" {
				version = f[2]
			}
			if _, rev, ok := strings.Cut(strings.TrimSpace(line), "vcs.revision="); ok {
				commit = rev
			}
		}
	}

	tests := []struct {
		name             string
		args             []string
		code             int
		stdout0, stderr0 string // first lines, "" for empty output
	}{
		{"typo'd subcommand", []string{"chek", "-config", good}, 2, "", `modelgate: unknown subcommand "chek"`},
		{"stray argument", []string{"check", "-config", good, "extra"}, 2, "", `modelgate check: unexpected argument "extra"`},
		{"stray argument to serve", []string{"-config", good, "now"}, 2, "", `modelgate serve: unexpected argument "now"`},
		{"unknown flag", []string{"check", "-confg", good}, 2, "", "modelgate check: flag provided but not defined: -confg"},
		{"help", []string{"-h"}, 0, "Usage: modelgate [serve|check|demo|version] [flags]", ""},
		{"help of a subcommand", []string{"check", "-help"}, 0, "Usage: modelgate [serve|check|demo|version] [flags]", ""},
		{"version", []string{"version"}, 0, "modelgate " + version + " (commit " + commit, ""},
		{"check ok", []string{"check", "-config", good}, 0, good + ": ok", ""},
		{"check bad", []string{"check", "-config", bad}, 1, "", bad + `:2: log_level: "verbose", want trace, debug, info, warn, error or disabled`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, tt.args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, &stdout, &stderr)
			}
			for _, o := range []struct {
				what, got, want string
			}{{"stdout", stdout.String(), tt.stdout0}, {"stderr", stderr.String(), tt.stderr0}} {
				first, _, _ := strings.Cut(o.got, "\n")
				if !strings.HasPrefix(first, o.want) || (o.want == "" && o.got != "") {
					t.Errorf("%s starts %q, want %q\n%s", o.what, first, o.want, o.got)
				}
			}
			if tt.name == "help" || strings.HasPrefix(tt.stderr0, "modelgate: unknown") {
				usage := stdout.String() + stderr.String()
				for _, want := range []string{"serve ", "check ", "demo ", "version ", "-config", "-listen", "-admin", "-env-optional"} {
					if !strings.Contains(usage, want) {
						t.Errorf("usage lacks %q:\n%s", want, usage)
					}
				}
			}
		})
	}
}

// TestCheckMatchesServe: every config check accepts, serve starts (its
// listeners bound), and every config serve rejects, check rejects at the
// line of the mistake and naming its field.
func TestCheckMatchesServe(t *testing.T) {
	dir := t.TempDir()
	pool := filepath.Join(dir, "pool.yaml")
	write(t, pool, "instances: []\n")
	t.Setenv("MG_TEST_ADDR", "127.0.0.1:0")
	t.Setenv("MG_TEST_QUOTED", `a "quoted" # not a comment`)
	t.Setenv("MG_TEST_LEVEL", "VERBOSE")
	base := "discovery:\n  static: " + pool + "\nlisten: 127.0.0.1:0\nadmin: 127.0.0.1:0\n"
	tests := []struct {
		name, yaml string
		line       int    // 0: valid
		field      string // the start of the message at that line
	}{
		{"minimal", base, 0, ""},
		{"levels", base + "log_level: warn\n", 0, ""},
		{"env in a scalar", "discovery:\n  static: " + pool + "\nlisten: ${MG_TEST_ADDR}\nadmin: 127.0.0.1:0\n", 0, ""},
		{"env value with quote and hash", base + "routes:\n  - model: chat\n    service: '${MG_TEST_QUOTED}'\n", 0, ""},
		{"bad log level", base + "log_level: verbose\n", 5, "log_level"},
		{"log level from env", base + "log_level: ${MG_TEST_LEVEL}\n", 5, "log_level"},
		{"port without colon", "discovery:\n  static: " + pool + "\nlisten: 8481\nadmin: 127.0.0.1:0\n", 3, "listen"},
		{"admin port out of range", "discovery:\n  static: " + pool + "\nlisten: 127.0.0.1:0\nadmin: 127.0.0.1:99999\n", 4, "admin.listen"},
		{"unset env var", base + "routes:\n  - model: chat\n    service: ${MG_TEST_UNSET_VAR}\n", 7, "${MG_TEST_UNSET_VAR}"},
		{"bad retries", base + "routes:\n  - model: chat\n    retries: -1\n", 7, "routes[0].retries"},
		{"unknown field", base + "listn: x\n", 5, "field listn not found"},
		{"pattern routes", base + "routes:\n  - model: 'qwen-*'\n    service: qwen\n  - model: '*'\n    service: any\n", 0, ""},
		{"pattern with a star inside", base + "routes:\n  - model: chat\n  - model: 'q*n'\n    service: qwen\n", 7, `routes[1].model: "q*n": a pattern has one "*", at its end`},
		{"duplicate patterns", base + "routes:\n  - model: 'qwen-*'\n    service: a\n  - model: 'qwen-*'\n    service: b\n", 8, `routes[1].model: name "qwen-*" already used by routes[0]`},
		{"pattern route without service", base + "routes:\n  - model: 'qwen-*'\n", 6, "routes[0].service: required for a pattern route"},
		{"consumer pattern", base + "consumers:\n  - name: a\n    key_sha256: " + strings.Repeat("ab", 32) + "\n    models: [chat, 'q*n']\n", 8, `consumers[0].models[1]: "q*n"`},
		{"breaker and retry_on", base + "routes:\n  - model: chat\n    retry_on: [429, 503]\n    breaker: {consecutive_failures: 3, failure_ratio: 0.4, min_requests: 10, window: 20s, open_timeout: 30s, half_open_probes: 2}\n", 0, ""},
		{"retry_on a success", base + "routes:\n  - model: chat\n    retry_on: [503, 200]\n", 7, "routes[0].retry_on[1]: 200, want a status from 400 to 599"},
		{"retry_on a word", base + "routes:\n  - model: chat\n    retry_on: [5xx]\n", 7, "cannot unmarshal"},
		{"breaker ratio above 1", base + "routes:\n  - model: chat\n    breaker:\n      consecutive_failures: 2\n      failure_ratio: 1.5\n", 9, "routes[0].breaker.failure_ratio"},
		{"breaker negative count", base + "routes:\n  - model: chat\n    breaker:\n      consecutive_failures: -1\n", 8, "cannot unmarshal !!int `-1` into uint32"},
		{"breaker negative timeout", base + "routes:\n  - model: chat\n    breaker: {open_timeout: -5s}\n", 7, "routes[0].breaker.open_timeout: must not be negative"},
		{"breaker unknown field", base + "routes:\n  - model: chat\n    breaker:\n      failures: 3\n", 8, "field failures not found"},
		{"breakers of one service disagree", base + "routes:\n  - model: a\n    service: s\n    breaker: {consecutive_failures: 2}\n  - model: b\n    service: s\n    breaker: {consecutive_failures: 3}\n", 11, "routes[1].breaker: differs from routes[0]'s"},
		{"negative enter_after", base + "degrade:\n  enter_after: -3s\n", 6, "degrade.enter_after: must not be negative"},
		{"negative cache ttl", base + "degrade:\n  cache: {fresh_ttl: -1m}\n", 6, "degrade.cache.fresh_ttl: must not be negative"},
		{"bad criticality", base + "routes:\n  - model: chat\n    criticality: urgent\n", 7, "routes[0].criticality: want critical, standard or sheddable"},
		{"criticality not a string", base + "routes:\n  - model: chat\n    criticality: [critical]\n", 7, "cannot unmarshal"},
		{"duplicate model", base + "routes:\n  - model: a\n  - model: a\n", 7, `routes[1].model: name "a" already used by routes[0]`},
		{"duplicate alias", base + "routes:\n  - model: a\n  - model: b\n    aliases: [c, a]\n", 8, `routes[1].aliases[1]: name "a" already used by routes[0]`},
		{"admin off loopback without token", "discovery:\n  static: " + pool + "\nlisten: 127.0.0.1:0\nadmin: 0.0.0.0:0\n", 4, "admin.listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "modelgate.yaml")
			write(t, path, tt.yaml)
			_, checkErr := loadConfig(path)
			d, serveErr := prepare(path, "", "")
			if d != nil {
				d.close()
			}
			if tt.line == 0 {
				if checkErr != nil || serveErr != nil {
					t.Fatalf("check: %v; serve: %v", checkErr, serveErr)
				}
				return
			}
			if serveErr == nil || checkErr == nil {
				t.Fatalf("accepted: check: %v; serve: %v", checkErr, serveErr)
			}
			want := path + ":" + strconv.Itoa(tt.line) + ": " + tt.field
			if !strings.Contains("\n"+checkErr.Error(), "\n"+want) {
				t.Errorf("check said %q, want a line starting %q", checkErr, want)
			}
		})
	}
}

// TestCheckOneMistakeOneLine: a mistake that used to end the decoding (a
// bad criticality) or go unseen (a negative enter_after) is one line of
// check's output, at its own line, with no phantom error after it.
func TestCheckOneMistakeOneLine(t *testing.T) {
	dir := t.TempDir()
	pool := filepath.Join(dir, "pool.yaml")
	write(t, pool, "instances: []\n")
	base := "discovery:\n  static: " + pool + "\nroutes:\n  - model: a\n"
	tests := []struct{ name, yaml, want string }{
		{"criticality", base + "    criticality: urgent\n  - model: b\n  - model: c\n", ":5: routes[0].criticality: want critical, standard or sheddable"},
		{"enter_after", base + "degrade:\n  enter_after: -3s\n  exit_after: 10s\n", ":6: degrade.enter_after: must not be negative"},
		{"duplicate alias", base + "  - model: b\n    aliases: [a]\n", `:6: routes[1].aliases[0]: name "a" already used by routes[0]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "modelgate.yaml")
			write(t, path, tt.yaml)
			var stdout, stderr bytes.Buffer
			if code := run([]string{"check", "-config", path}, &stdout, &stderr); code != 1 {
				t.Fatalf("exit %d", code)
			}
			if got := strings.TrimSpace(stderr.String()); got != path+tt.want {
				t.Errorf("check said:\n%s\nwant exactly:\n%s", got, path+tt.want)
			}
		})
	}
}
