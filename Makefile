# modelgate — the one entry point for building, testing and benchmarking.
#
#   make test    vet, gofmt, staticcheck, unit + integration tests with -race
#                (starts a real Nacos on loopback, and two more on 28848 and 28858
#                that no test may collide with, and stops them afterwards; builds or reuses
#                llama-server and LiteLLM, which the tests start and stop), a short fuzz run
#   make demo    run `modelgate demo` (embedded pool of mock models, no Nacos)
#   make bench   end-to-end figures (bench/, BENCHMARKS.md); make bench-micro: go test -bench
#   make chaos   faults under load against a real Nacos
#   make bench-scale  10,000 instances in 500 services in a private Nacos (bench/scale)
#   make nacos-up / nacos-down   a real Nacos on 127.0.0.1:$(NACOS_PORT)

GO          ?= go
NACOS_PORT  ?= 18848
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
PKGS        := ./...
FUZZTIME    ?= 20000x
BENCH_SECONDS ?= 4
export BENCH_SECONDS

export NACOS_PORT
export MODELGATE_NACOS_ADDR := 127.0.0.1:$(NACOS_PORT)

.PHONY: redis bench-sched
# Engine-aware scheduling on real llama.cpp servers: p2c vs policy engine vs an
# affinity oracle, multi-turn and unique prompts, 2 and 3 servers (bench/sched;
# writes BENCHMARKS.md; 3 rounds, ~8 min). Flags: make bench-sched SCHED_ARGS='-rounds 2 -instances 2';
# SCHED_ARGS=-mock runs the same legs on mock engines in ~2 min and writes nothing.
bench-sched:
	$(GO) test -tags benchsched -run '^TestBenchSched$$' -count=1 -v -timeout 90m ./bench/sched/ $(if $(SCHED_ARGS),-args $(SCHED_ARGS))

.PHONY: all test check unit fuzz demo build bench bench-micro chaos wrk nacos-up nacos-down clean python-env chromium prometheus engines

all: build

build:
	$(GO) build -o bin/modelgate ./cmd/modelgate

demo:
	$(GO) run ./cmd/modelgate demo

# test runs everything CI runs. Nacos is stopped even when tests fail. Two
# more run on 28848 and 28858 meanwhile (scripts/nacos-busy.sh), where a
# developer's own Nacos often is: no test may collide with one.
test: check
	@scripts/nacos-up.sh
	@status=0; { scripts/nacos-busy.sh up && $(MAKE) --no-print-directory unit fuzz; } || status=$$?; \
	  scripts/nacos-busy.sh down; scripts/nacos-down.sh; exit $$status

check:
	$(GO) mod download
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run $(STATICCHECK) $(PKGS)

# Tests of Nacos restarts are built without -race (the SDK races with itself
# on reconnect: docs/decisions/0002-nacos-restart-tests-without-race.md) and run
# in a second pass; so is the allocation test (-race changes allocation counts).
unit: python-env chromium prometheus wrk engines redis
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(GO) test -p 1 -count=1 -timeout 10m -run 'Restart|TwoServers|OverTLS|SmokeScale' ./discovery/nacos/ ./cmd/modelgate/ ./bench/...
	$(GO) test -count=1 -run '^TestProxyAllocs$$' ./router/

# A short run of each fuzz target; seeds are the targets' f.Add calls. The
# budget is a count of inputs, not a duration: with a duration, Go 1.26's
# fuzzing coordinator can fail a target with a bare "context deadline
# exceeded" at the deadline on a loaded machine (golang/go#75804).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(FUZZTIME) ./internal/sse
	$(GO) test -run '^$$' -fuzz '^FuzzInspectChunk$$' -fuzztime $(FUZZTIME) ./router
	$(GO) test -run '^$$' -fuzz '^FuzzUsageFromJSON$$' -fuzztime $(FUZZTIME) ./router
	$(GO) test -run '^$$' -fuzz '^FuzzKey$$' -fuzztime $(FUZZTIME) ./degrade/replycache
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./scrape
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/reqjson

# End-to-end: modelgate vs a bare fasthttp proxy vs direct (bench/, figures in
# BENCHMARKS.md), then the balancer pick benchmark.
bench: wrk
	$(GO) run ./bench/run bench
	$(GO) test -run '^$$' -bench . -benchmem ./balancer/

# Go micro-benchmarks of every package.
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# 10,000 instances in 500 services in a private Nacos started on a free port
# (bench/scale; figures in BENCHMARKS.md, plan in docs/scale.md), a few minutes.
# Flags: make bench-scale SCALE_ARGS='-idle 30s -services 100'.
.PHONY: bench-scale
bench-scale:
	$(GO) run ./bench/run scale $(SCALE_ARGS)

# Faults under steady load against instances in a real Nacos (bench/chaos).
chaos:
	$(GO) run ./bench/run chaos

wrk:
	@bench/wrk.sh >/dev/null

# The venv (.cache/pyenv) with the pinned official OpenAI Python SDK that
# cmd/modelgate's TestPythonSDKAgainstRealNacos drives modelgate with.
python-env:
	@scripts/python-env.sh >/dev/null

# Real servers for the integration tests (internal/enginetest), cached per
# machine under ~/.cache/modelgate: llama.cpp's llama-server built from source
# with its tiny generated model (~10 min on 2 cores the first time), and
# LiteLLM's proxy in a venv.
engines:
	@scripts/llama-build.sh >/dev/null
	@scripts/litellm-env.sh >/dev/null

# Debian's headless Chromium, for the status page's browser test.
chromium:
	@scripts/chromium.sh >/dev/null

# Debian's redis-server, for the shared-store tests (each test runs its own
# on a free loopback port and stops it when it ends: internal/redistest).
redis:
	@scripts/redis.sh >/dev/null

# Debian's prometheus and promtool, for the metrics and dashboard tests.
prometheus:
	@scripts/prometheus.sh >/dev/null

nacos-up:
	scripts/nacos-up.sh

nacos-down:
	scripts/nacos-down.sh

clean:
	rm -rf bin
