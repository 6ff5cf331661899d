package scrape_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/testkit"
	"github.com/modelgate/modelgate/scrape"
)

// endpoint is a fake engine metrics endpoint whose behaviour a test sets.
type endpoint struct {
	srv     *httptest.Server
	mode    atomic.Value // "vllm", "garbage", "slow"
	waiting atomic.Int64
	hits    atomic.Int64
	release chan struct{}
}

func newEndpoint(t *testing.T, mode string) *endpoint {
	e := &endpoint{release: make(chan struct{})}
	e.mode.Store(mode)
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		switch e.mode.Load().(string) {
		case "slow":
			select {
			case <-e.release:
			case <-r.Context().Done():
			}
		case "garbage":
			fmt.Fprint(w, "<html><body>502 Bad Gateway</body></html>\n")
		default:
			fmt.Fprintf(w, "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=\"m\"} %d\nvllm:num_requests_running{model_name=\"m\"} 2\n", e.waiting.Load())
		}
	}))
	t.Cleanup(func() { close(e.release); e.srv.Close() })
	return e
}

func instance(addr, engine string) *discovery.Instance {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return &discovery.Instance{Service: "qwen", Host: host, Port: p, Weight: 1, Healthy: true, Enabled: true,
		Metadata: map[string]string{"engine": engine}}
}

func engineOf(b *balancer.Balancer, id string) balancer.InstanceStat {
	for _, st := range b.Instances() {
		if st.ID == id {
			return st
		}
	}
	return balancer.InstanceStat{}
}

// An endpoint that is down, slow or returns garbage leaves its instance on
// in-flight counts, is counted by reason, and holds up neither the good
// instance's scrapes nor anything else.
func TestFailingEndpointsFallBackToInFlight(t *testing.T) {
	good, slow, garbage := newEndpoint(t, "vllm"), newEndpoint(t, "slow"), newEndpoint(t, "garbage")
	good.waiting.Store(5)
	dead := testkit.FreeAddr(t)
	ins := []*discovery.Instance{instance(good.srv.Listener.Addr().String(), "vllm"),
		instance(slow.srv.Listener.Addr().String(), "vllm"), instance(garbage.srv.Listener.Addr().String(), "vllm"),
		instance(dead, "vllm"), instance("127.0.0.1:9", "")} // the last names no engine: never scraped
	pool := discovery.NewPool()
	pool.Update("LLM@@qwen", ins)
	bal := balancer.New(pool, nil)
	s := scrape.New(pool, bal, scrape.Settings{Interval: 20 * time.Millisecond, Timeout: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	id := func(i int) string { return ins[i].ID() }
	stat := func(i int) scrape.Stat { st, _ := s.Stat(id(i)); return st }
	testkit.Eventually(t, 20*time.Second, "every failure counted and the good instance scraped repeatedly", func() bool {
		return stat(0).Scrapes[scrape.ResultOK] >= 5 && stat(1).Scrapes[scrape.ResultTimeout] >= 2 &&
			stat(2).Scrapes[scrape.ResultGarbage] >= 2 && stat(3).Scrapes[scrape.ResultDown] >= 2
	})
	// The slow endpoint's hangs cost each round at most the timeout: the
	// good one was scraped in every round.
	if ok, rounds := stat(0).Scrapes[scrape.ResultOK], s.Rounds(); ok+1 < rounds {
		t.Errorf("good endpoint scraped %d times in %d rounds", ok, rounds)
	}
	if st := engineOf(bal, id(0)); !st.EngineFresh || st.Engine.Waiting != 5 || st.Engine.Running != 2 {
		t.Errorf("good instance: balancer has %+v fresh=%v, want waiting 5 running 2", st.Engine, st.EngineFresh)
	}
	for i := 1; i <= 3; i++ {
		if st := engineOf(bal, id(i)); st.EngineFresh {
			t.Errorf("instance %s: engine load fresh after failed scrapes", id(i))
		}
		if st := stat(i); st.Fresh || st.LastError == "" {
			t.Errorf("instance %s: fresh=%v last error %q", id(i), st.Fresh, st.LastError)
		}
	}
	if _, ok := s.Stat(id(4)); ok {
		t.Error("an instance without engine metadata was scraped")
	}

	// A good endpoint turning bad falls back at its next scrape.
	good.mode.Store("garbage")
	testkit.Eventually(t, 20*time.Second, "the good instance's load to clear", func() bool { return !engineOf(bal, id(0)).EngineFresh })

	var sb strings.Builder
	s.WritePrometheus(&sb)
	for _, want := range []string{
		`modelgate_engine_scrapes_total{service="LLM@@qwen",upstream="` + dead + `",engine="vllm",result="down"}`,
		`modelgate_engine_metrics_fresh{service="LLM@@qwen",upstream="` + dead + `",engine="vllm"} 0`,
		`modelgate_engine_requests_waiting{service="LLM@@qwen",upstream="` + ins[0].Addr() + `",engine="vllm"} 5`,
	} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, sb.String())
		}
	}
}

// Instances that leave the pool are no longer scraped nor shown.
func TestTargetsFollowThePool(t *testing.T) {
	e := newEndpoint(t, "vllm")
	in := instance(e.srv.Listener.Addr().String(), "vllm")
	pool := discovery.NewPool()
	pool.Update("LLM@@qwen", []*discovery.Instance{in})
	bal := balancer.New(pool, nil)
	s := scrape.New(pool, bal, scrape.Settings{Interval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	testkit.Eventually(t, 20*time.Second, "a scrape", func() bool { st, _ := s.Stat(in.ID()); return st.Fresh })
	pool.Update("LLM@@qwen", nil)
	testkit.Eventually(t, 20*time.Second, "the target to go", func() bool { return len(s.Stats()) == 0 })
	before := e.hits.Load()
	r := s.Rounds()
	testkit.Eventually(t, 20*time.Second, "two more rounds", func() bool { return s.Rounds() >= r+2 })
	if e.hits.Load() > before+1 { // one scrape may have been under way
		t.Errorf("endpoint scraped %d times after leaving the pool", e.hits.Load()-before)
	}
}
