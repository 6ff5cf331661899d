package balancer_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/balancer/internal/lbtest"
	"github.com/modelgate/modelgate/balancer/random"
	"github.com/modelgate/modelgate/balancer/wrr"
	"github.com/modelgate/modelgate/discovery"
)

// tagged returns a balancer over n instances of which three in four carry
// zone=a, with a route requiring gpu=a100 (which all carry), and a request
// with header tags that repeat the route's and add zone=a.
func tagged(n int, opts ...balancer.Option) (*balancer.Balancer, *balancer.Request) {
	ins := make([]*discovery.Instance, n)
	for i := range ins {
		zone := "a"
		if i%4 == 3 {
			zone = "b"
		}
		ins[i] = lbtest.Inst(i+1, float64(1+i%3), "gpu", "a100", "zone", zone, "version", "v1")
	}
	routes := []balancer.Route{{Name: "chat", Service: lbtest.Key, Tags: map[string]string{"gpu": "a100"}}}
	b := balancer.New(lbtest.Pool(ins...), routes, opts...)
	return b, &balancer.Request{Route: "chat", Tags: map[string]string{"gpu": "a100", "zone": "a"}}
}

func TestPickDoesNotAllocate(t *testing.T) {
	for _, opt := range []balancer.Option{balancer.WithPolicy(nil), balancer.WithPolicy(wrr.New()), balancer.WithPolicy(random.New())} {
		b, req := tagged(64, opt)
		res := balancer.Result{Status: 200, Latency: time.Millisecond}
		if n := testing.AllocsPerRun(1000, func() {
			p, err := b.Pick(req)
			if err != nil {
				t.Fatal(err)
			}
			p.Done(res)
		}); n != 0 {
			t.Errorf("Pick+Done allocates %.1f times", n)
		}
	}
}

// BenchmarkPick measures Pick alone with breakers, without and with a
// per-request tag filter, from parallel goroutines. Nothing is reported
// through Done, so in-flight counts only grow; p2c still compares them.
func BenchmarkPick(b *testing.B) { benchPick(b, false) }

// BenchmarkPickDone measures Pick followed by Done, which feeds the
// breaker (gobreaker reads time.Now twice) and the latency average.
func BenchmarkPickDone(b *testing.B) { benchPick(b, true) }

func benchPick(b *testing.B, done bool) {
	for _, n := range []int{8, 64} {
		for _, filter := range []bool{false, true} {
			b.Run(fmt.Sprintf("instances=%d/header_tags=%v", n, filter), func(b *testing.B) {
				bal, _ := tagged(n)
				res := balancer.Result{Status: 200, Latency: time.Millisecond}
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					_, req := tagged(0)
					if !filter {
						req.Tags = nil
					}
					for pb.Next() {
						p, err := bal.Pick(req)
						if err != nil {
							b.Fatal(err)
						}
						if done {
							p.Done(res)
						}
					}
				})
			})
		}
	}
}

// BenchmarkRebuild measures compiling a snapshot of 1,000 instances in ten
// services, each with a route that has tags, preferred tags and a split.
func BenchmarkRebuild(b *testing.B) {
	pool := discovery.NewPool()
	var routes []balancer.Route
	for s := range 10 {
		svc := fmt.Sprint("svc", s)
		ins := make([]*discovery.Instance, 100)
		for i := range ins {
			ins[i] = &discovery.Instance{Service: svc, Host: fmt.Sprint("10.0.", s, ".", i), Port: 8000, Weight: 1,
				Healthy: true, Enabled: true, Metadata: map[string]string{
					"gpu": []string{"a100", "h100"}[i%2], "version": []string{"v1", "v1", "v1", "v2"}[i%4], "zone": "a"}}
		}
		pool.Update(discovery.ServiceKey("", svc), ins)
		routes = append(routes, balancer.Route{Name: svc, Service: svc, Tags: map[string]string{"zone": "a"},
			Prefer: map[string]string{"gpu": "h100"}, Split: map[string]int{"v1": 90, "v2": 10}})
	}
	bal := balancer.New(pool, routes)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := bal.SetRoutes(routes); err != nil {
			b.Fatal(err)
		}
	}
}
