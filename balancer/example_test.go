package balancer_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/discovery"
)

// A canary route: 90 % of traffic to v1, 10 % to v2, preferring h100 GPUs.
// Each attempt is reported through Done; a retry excludes what was tried.
func Example() {
	pool := discovery.NewPool()
	pool.Update("LLM@@qwen", []*discovery.Instance{
		{Service: "qwen", Host: "10.0.0.1", Port: 8000, Weight: 1, Healthy: true, Enabled: true,
			Metadata: map[string]string{"version": "v1", "gpu": "h100"}},
		{Service: "qwen", Host: "10.0.0.2", Port: 8000, Weight: 1, Healthy: true, Enabled: true,
			Metadata: map[string]string{"version": "v2", "gpu": "h100"}},
	})
	b := balancer.New(pool, []balancer.Route{{
		Name: "chat", Service: "LLM@@qwen",
		Prefer: map[string]string{"gpu": "h100"},
		Split:  map[string]int{"v1": 90, "v2": 10},
	}})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() { stopped <- b.Run(ctx) }() // follows pool changes
	defer func() { cancel(); <-stopped }()

	req := &balancer.Request{Route: "chat", StickyKey: "user-42"}
	for attempt := 0; attempt < 2; attempt++ {
		picked, err := b.Pick(req)
		if errors.Is(err, balancer.ErrNoInstance) {
			fmt.Println("no instance:", err)
			return
		}
		start := time.Now()
		status := 200 // … forward the request to picked.Instance.Addr() …
		picked.Done(balancer.Result{Status: status, Latency: time.Since(start)})
		if status < 500 {
			fmt.Println("served by", picked.Instance.Version)
			return
		}
		req.Exclude = append(req.Exclude, picked.Instance.ID())
	}
	// Output: served by v1
}
