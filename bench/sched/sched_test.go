//go:build benchsched

package sched

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/bench/harness"
	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/enginetest"
	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/router"
)

var (
	conversations = flag.Int("conversations", 8, "conversations in the multi-turn workload")
	turns         = flag.Int("turns", 4, "turns per conversation")
	uniques       = flag.Int("uniques", 24, "prompts in the unique-prompt workload")
	prefixWords   = flag.Int("prefix-words", 1500, "words of each conversation's document (about one token each)")
	rounds        = flag.Int("rounds", 3, "rounds of every leg")
	sizes         = flag.String("instances", "2,3", "llama-server counts")
	write         = flag.Bool("write", true, "write the run into BENCHMARKS.md (never with -mock)")
	mock          = flag.Bool("mock", false, "run on the mock's engine economics (internal/mockllm) instead of llama-servers: seconds, not minutes")
)

// The mock's economics in -mock mode, about those of the tiny model on one
// llama-server thread: a cold 1,500-word document (~2,000 mock tokens)
// prefills in ~400 ms, 16 tokens decode in 160 ms; 2 slots, so that where
// a request lands matters at concurrency 4.
var mockEngine = mockllm.EngineConfig{PrefillPerToken: 200 * time.Microsecond, DecodePerToken: 10 * time.Millisecond, Slots: 2}

const concurrency = 4

// words are pieces of the tiny model's vocabulary: about one token each.
var words = strings.Fields("the be to of and a in that have it for not on with he as you do at this but his by from they we say her she or an will my one all would there their what so up out if about who get which go me when make can like time no just him know take people into year your good some could them see other than then now look only come its over think")

// document is conversation c's distinct text of n words.
func document(c, n int) string {
	r := rand.New(rand.NewPCG(uint64(c)+1, 0x5eed))
	var sb strings.Builder
	fmt.Fprintf(&sb, "document %d:", c)
	for range n {
		sb.WriteByte(' ')
		sb.WriteString(words[r.IntN(len(words))])
	}
	return sb.String()
}

type leg struct {
	name   string // p2c, engine, oracle
	policy string // the route's policy; "" for the oracle
}

var legs = []leg{{"p2c", "p2c"}, {"engine", "engine"}, {"oracle", ""}}

type result struct {
	workload  string
	n         int
	round     int
	leg       string
	ttfts     []time.Duration
	wall      time.Duration
	hitRatio  float64
	prompt    int // prompt tokens, from usage, for the record
	errors    int
	firstErr  string
	requests  int
	cachedTok float64
}

func TestBenchSched(t *testing.T) {
	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			t.Fatalf("-instances %q", *sizes)
		}
		ns = append(ns, n)
	}
	if !*mock {
		enginetest.LlamaBuild(t)
	}
	start := time.Now()
	load := loadAvg()
	var all []result
	for _, n := range ns {
		for r := range *rounds {
			for _, w := range []string{"multi-turn", "unique"} {
				order := slices.Clone(legs)
				k := (r + len(all)) % len(order) // rotate the legs each round
				order = append(order[k:], order[:k]...)
				if w == "unique" {
					// p2c and engine back to back, in turn first: their ratio
					// is the verdict, and the machine's load drifts.
					order = []leg{legs[r%2], legs[1-r%2], legs[2]}
				}
				for _, l := range order {
					res := runLeg(t, w, n, l)
					res.round = r
					t.Logf("%s n=%d %-6s: TTFT p50 %v p95 %v, wall %v, hit ratio %.3f, %d requests, %d errors %s",
						w, n, l.name, pct(res.ttfts, 50), pct(res.ttfts, 95), res.wall.Round(time.Millisecond),
						res.hitRatio, res.requests, res.errors, res.firstErr)
					all = append(all, res)
				}
			}
		}
	}
	report := render(all, ns, start, load)
	fmt.Println(report)
	if *write && !*mock {
		if err := writeBenchmarks(report); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range all {
		if r.errors > 0 {
			t.Errorf("%s n=%d %s: %d of %d requests failed: %s", r.workload, r.n, r.leg, r.errors, r.requests, r.firstErr)
		}
	}
}

// server is one engine of a leg: a llama-server, or a mock with -mock.
type server struct {
	url  string // http://127.0.0.1:PORT
	port int
	// hits returns the prompt tokens the engine served from its prefix
	// cache and those it prefilled.
	hits func(t *testing.T) (cached, prefilled float64)
	stop func()
}

// engineName is the instances' metadata.engine: how modelgate scrapes them.
func engineName() string {
	if *mock {
		return "vllm" // the mock's /metrics are in vLLM's format
	}
	return "llamacpp"
}

// servers starts n fresh engines (cold caches).
func servers(t *testing.T, n int) []server {
	out := make([]server, n)
	if *mock {
		for i := range out {
			m, err := mockllm.Start("127.0.0.1:0", mockllm.Config{Name: fmt.Sprintf("mock-%d", i), Engine: &mockEngine,
				ReplyWords: 16, StreamChunks: 16})
			if err != nil {
				t.Fatal(err)
			}
			_, port, _ := net.SplitHostPort(m.Addr())
			p, _ := strconv.Atoi(port)
			out[i] = server{url: "http://" + m.Addr(), port: p, stop: func() { _ = m.Close() },
				hits: func(*testing.T) (float64, float64) {
					st := m.Engine()
					return float64(st.CachedTokens), float64(st.PromptTokens - st.CachedTokens)
				}}
		}
		return out
	}
	for i, s := range enginetest.Llamas(t, n, enginetest.LlamaOptions{Threads: 1}) {
		out[i] = server{url: s.URL, port: s.Port, stop: s.Stop, hits: func(t *testing.T) (float64, float64) {
			m := engineMetrics(t, s.URL)
			return m["llamacpp:prompt_tokens_cached_total"], m["llamacpp:prompt_tokens_total"]
		}}
	}
	return out
}

// runLeg starts n fresh engines (cold caches), runs workload w through leg
// l and stops them.
func runLeg(t *testing.T, w string, n int, l leg) result {
	srvs := servers(t, n)
	defer func() {
		for _, s := range srvs {
			s.stop()
		}
	}()
	urls := make([]string, n)
	for i, s := range srvs {
		urls[i] = s.url + "/v1"
	}
	target := func(k int) (string, string) { return urls[k%n], "tiny" }
	if l.policy != "" {
		base := gateway(t, srvs)
		target = func(int) (string, string) { return base, l.name }
	}
	res := result{workload: w, n: n, leg: l.name}
	var mu sync.Mutex
	record := func(ttft time.Duration, prompt int, err error) {
		mu.Lock()
		defer mu.Unlock()
		res.requests++
		if err != nil {
			res.errors++
			if res.firstErr == "" {
				res.firstErr = err.Error()
			}
			return
		}
		res.ttfts = append(res.ttfts, ttft)
		res.prompt += prompt
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	begin := time.Now()
	for range concurrency {
		wg.Go(func() {
			for k := range jobs {
				url, model := target(k)
				// llama-server closes the connection after every stream: the
				// oracle's client opens a new one per request, as modelgate does.
				client := openai.NewClient(option.WithBaseURL(url), option.WithAPIKey("bench"), option.WithMaxRetries(0),
					option.WithHTTPClient(&http.Client{Transport: &http.Transport{DisableKeepAlives: l.policy == ""}}))
				if w == "unique" {
					msgs := []openai.ChatCompletionMessageParamUnion{
						openai.SystemMessage(document(10_000+k, *prefixWords)), openai.UserMessage("summarise")}
					ttft, prompt, _, err := turn(client, model, msgs)
					record(ttft, prompt, err)
					continue
				}
				msgs := []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(document(k, *prefixWords))}
				for q := range *turns {
					msgs = append(msgs, openai.UserMessage(fmt.Sprintf("question %d about the document", q)))
					ttft, prompt, reply, err := turn(client, model, msgs)
					record(ttft, prompt, err)
					if err != nil {
						break
					}
					msgs = append(msgs, openai.AssistantMessage(reply))
				}
			}
		})
	}
	count := *conversations
	if w == "unique" {
		count = *uniques
	}
	for k := range count {
		jobs <- k
	}
	close(jobs)
	wg.Wait()
	res.wall = time.Since(begin)
	var cached, processed float64
	for _, s := range srvs {
		c, p := s.hits(t)
		cached += c
		processed += p
	}
	res.cachedTok = cached
	if cached+processed > 0 {
		res.hitRatio = cached / (cached + processed)
	}
	return res
}

// turn streams one chat completion and returns the time to its first
// content, the prompt tokens and the reply.
func turn(client openai.Client, model string, msgs []openai.ChatCompletionMessageParamUnion) (time.Duration, int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model: model, Messages: msgs, MaxTokens: openai.Int(16), Temperature: openai.Float(0),
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	defer stream.Close()
	var ttft time.Duration
	var reply strings.Builder
	prompt := 0
	for stream.Next() {
		c := stream.Current()
		if ttft == 0 && len(c.Choices) > 0 {
			ttft = time.Since(start) // the first event: the engine has prefilled
		}
		for _, ch := range c.Choices {
			reply.WriteString(ch.Delta.Content)
		}
		if c.Usage.PromptTokens > 0 {
			prompt = int(c.Usage.PromptTokens)
		}
	}
	if err := stream.Err(); err != nil {
		return 0, 0, "", err
	}
	if ttft == 0 {
		return 0, 0, "", fmt.Errorf("stream without a choice")
	}
	return ttft, prompt, reply.String(), nil
}

// gateway serves a router over srvs, with routes p2c and engine, on a
// loopback port for the rest of the test, and returns its /v1 URL.
func gateway(t *testing.T, srvs []server) string {
	pool := discovery.NewPool()
	var ins []*discovery.Instance
	for _, s := range srvs {
		ins = append(ins, &discovery.Instance{Service: "llama", Host: "127.0.0.1", Port: s.port, Weight: 1,
			Healthy: true, Enabled: true, Metadata: map[string]string{"engine": engineName()}})
	}
	pool.Update(discovery.ServiceKey("", "llama"), ins)
	pool.MarkSynced()
	cfg := router.Config{Routes: []router.Route{
		{Model: "p2c", Service: "llama", UpstreamModel: "tiny", Policy: "p2c"},
		{Model: "engine", Service: "llama", UpstreamModel: "tiny", Policy: "engine"},
	}}
	rt, err := router.New(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: rt.Handler, ErrorHandler: rt.ErrorHandler, MaxRequestBodySize: rt.MaxBodySize()}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(ln) })
	wg.Go(func() { _ = rt.Run(ctx) })
	t.Cleanup(func() { _ = srv.Shutdown(); cancel(); wg.Wait() })
	return "http://" + ln.Addr().String() + "/v1"
}

// engineMetrics reads a llama-server's /metrics.
func engineMetrics(t *testing.T, url string) map[string]float64 {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && !strings.HasPrefix(f[0], "#") {
			v, _ := strconv.ParseFloat(f[1], 64)
			out[f[0]] = v
		}
	}
	return out
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, (len(s)*p+99)/100-1)].Round(time.Millisecond)
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// median of one leg's figure over rounds.
func median(rs []result, f func(result) float64) float64 {
	var v []float64
	for _, r := range rs {
		v = append(v, f(r))
	}
	return median1(v)
}

// paired returns, round by round, a's figure over b's.
func paired(a, b []result, f func(result) float64) []float64 {
	var out []float64
	for _, x := range a {
		for _, y := range b {
			if x.round == y.round && f(y) > 0 {
				out = append(out, f(x)/f(y))
			}
		}
	}
	return out
}

// median1 is the median of v (the mean of the middle two for an even
// count).
func median1(v []float64) float64 {
	v = slices.Sorted(slices.Values(v))
	switch {
	case len(v) == 0:
		return 0
	case len(v)%2 == 0:
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return v[len(v)/2]
}

func render(all []result, ns []int, start time.Time, load string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "### Run of %s UTC\n\n", start.UTC().Format("2006-01-02 15:04"))
	engines := "llama-servers restarted before every leg"
	if *mock {
		engines = fmt.Sprintf("-mock: mock engines with %v prefill per uncached token, %v decode per token, %d slots, started afresh for every leg", mockEngine.PrefillPerToken, mockEngine.DecodePerToken, mockEngine.Slots)
	}
	fmt.Fprintf(&sb, "`make bench-sched` (%d conversations × %d turns of a distinct %d-word document, concurrency %d; %d unique prompts of the same size; %d round(s); %s) took %s. Machine: %s; load average %s at the start (shared machine: compare legs within a row, not across runs).\n\n",
		*conversations, *turns, *prefixWords, concurrency, *uniques, *rounds, engines, time.Since(start).Round(time.Second), harness.Machine(), load)
	sb.WriteString("Medians over the rounds; a row per leg, each line of the log per round.\n\n| workload | servers | leg | TTFT p50 | TTFT p95 | wall | engine cache-hit ratio |\n|---|---|---|---|---|---|---|\n")
	get := func(w string, n int, l string) []result {
		var out []result
		for _, r := range all {
			if r.workload == w && r.n == n && r.leg == l {
				out = append(out, r)
			}
		}
		return out
	}
	p50 := func(r result) float64 { return float64(pct(r.ttfts, 50)) }
	p95 := func(r result) float64 { return float64(pct(r.ttfts, 95)) }
	wall := func(r result) float64 { return float64(r.wall) }
	hit := func(r result) float64 { return r.hitRatio }
	ms := func(v float64) string { return time.Duration(v).Round(time.Millisecond).String() }
	var verdicts []string
	for _, w := range []string{"multi-turn", "unique"} {
		for _, n := range ns {
			for _, l := range legs {
				rs := get(w, n, l.name)
				fmt.Fprintf(&sb, "| %s | %d | %s | %s | %s | %s | %.3f |\n", w, n, l.name, ms(median(rs, p50)), ms(median(rs, p95)),
					ms(median(rs, wall)), median(rs, hit))
			}
			e, o, p := get(w, n, "engine"), get(w, n, "oracle"), get(w, n, "p2c")
			if w == "multi-turn" {
				verdicts = append(verdicts, fmt.Sprintf("- multi-turn, %d servers: engine/oracle cache-hit ratio %.2f (want ≥ 0.9), TTFT p50 %.2f× (want ≤ 1.25), wall %.2f× (want ≤ 1.25); p2c/oracle TTFT p50 %.2f×, wall %.2f×.",
					n, median(e, hit)/median(o, hit), median(e, p50)/median(o, p50), median(e, wall)/median(o, wall),
					median(p, p50)/median(o, p50), median(p, wall)/median(o, wall)))
			} else {
				ratios := paired(e, p, wall)
				var per []string
				for _, r := range ratios {
					per = append(per, fmt.Sprintf("%+.1f", 100*(r-1)))
				}
				verdicts = append(verdicts, fmt.Sprintf("- unique prompts, %d servers: engine wall %+.1f %% against p2c, the median of each round's ratio (%s %%; the two legs of a round run within seconds of each other); medians over rounds %+.1f %% (want no more than +5 %%).",
					n, 100*(median1(ratios)-1), strings.Join(per, ", "), 100*(median(e, wall)/median(p, wall)-1)))
			}
		}
	}
	sb.WriteString("\n" + strings.Join(verdicts, "\n") + "\n\nEvery leg, in the order run:\n\n```\n")
	for _, r := range all {
		fmt.Fprintf(&sb, "%-10s n=%d %-6s TTFT p50 %7s p95 %7s  wall %8s  hit %.3f  %d requests, %d failed\n", r.workload, r.n, r.leg,
			pct(r.ttfts, 50), pct(r.ttfts, 95), r.wall.Round(time.Millisecond), r.hitRatio, r.requests, r.errors)
	}
	sb.WriteString("```\n")
	return sb.String()
}

// writeBenchmarks puts report into BENCHMARKS.md's bench-sched section,
// replacing the previous run.
func writeBenchmarks(report string) error {
	path := filepath.Join(enginetest.RepoRoot(), "BENCHMARKS.md")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	const open, end = "<!-- bench-sched:begin -->\n", "<!-- bench-sched:end -->\n"
	s := string(b)
	i, j := strings.Index(s, open), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("BENCHMARKS.md has no %q … %q section", strings.TrimSpace(open), strings.TrimSpace(end))
	}
	s = s[:i+len(open)] + report + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}
