package main

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/mockllm"
	"github.com/modelgate/modelgate/internal/nacostest"
	"github.com/modelgate/modelgate/internal/testkit"
)

// TestCanaryByNacosWeight: v2's weight set 0 → 10 → 50 (v1 at 100) in the
// real Nacos moves its share to within ±3 % of each target over 5,000
// requests.
func TestCanaryByNacosWeight(t *testing.T) {
	addr := nacostest.Addr(t)
	group := testkit.UniqueGroup("E2ECANARY")
	key := discovery.ServiceKey(group, "qwen")
	v1 := startMock(t, "v1", mockllm.Config{})
	v2 := startMock(t, "v2", mockllm.Config{})
	nacostest.Register(t, addr, group, "qwen", "127.0.0.1", port(v1.Addr()), 100, map[string]string{"version": "v1"})
	r2 := nacostest.Register(t, addr, group, "qwen", "127.0.0.1", port(v2.Addr()), 1, map[string]string{"version": "v2"})
	d := startDaemon(t, nacosConfig(addr, group, "qwen", "keep"))
	c := d.client()

	for _, w := range []float64{0, 10, 50} {
		r2.Update(w, true)
		d.waitPool(t, key, 5*time.Second, func(l []*discovery.Instance) bool {
			return len(l) == 2 && l[0].Weight+l[1].Weight == 100+w
		})
		before1, before2 := v1.Requests(), v2.Requests()
		const total = 5000
		var wg sync.WaitGroup
		errs := make(chan error, total)
		for k := range 8 {
			wg.Go(func() {
				for i := k; i < total; i += 8 {
					if _, err := chat(context.Background(), c, "chat"); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("weight %v: %v", w, err)
		}
		n1, n2 := v1.Requests()-before1, v2.Requests()-before2
		share, want := float64(n2)/float64(n1+n2), w/(100+w)
		t.Logf("v2 weight %v: %d of %d (%.3f, want %.3f)", w, n2, n1+n2, share, want)
		if n1+n2 != total || math.Abs(share-want) > 0.03 {
			t.Fatalf("v2 weight %v: share %.3f, want %.3f ± 0.03 (%s)", w, share, want, fmt.Sprint(n1, "+", n2))
		}
	}
}
