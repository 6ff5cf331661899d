// The race detector makes sync.Pool drop items at random, so allocation
// counts mean something only without it: make test runs this file in a
// pass of its own without -race.

//go:build !race

package router

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// maxProxyAllocs bounds the allocations of one proxied non-streaming chat
// request, counted over the whole process (client, router, in-memory
// upstream) by testing.AllocsPerRun. Measured 10: the request ID, the
// access log's user agent, the upstream path, the pooled HostClient lookup,
// fasthttp's round trip, the usage read. Raise it only with a reason.
const maxProxyAllocs = 10

// TestProxyAllocs guards the hot path: a non-streaming request through the
// router over in-memory listeners allocates at most maxProxyAllocs times.
func TestProxyAllocs(t *testing.T) {
	client := benchGateway(t, benchUpstream(t, 0))
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://gw/v1/chat/completions")
	req.Header.SetMethod("POST")
	req.SetBodyString(`{"model":"m","messages":[{"role":"user","content":"hello there"}]}`)
	do := func() {
		if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("%v %d %s", err, resp.StatusCode(), resp.Body())
		}
	}
	for range 100 { // warm the pools and connections
		do()
	}
	allocs := testing.AllocsPerRun(500, do)
	t.Logf("%.1f allocations per proxied request", allocs)
	if allocs > maxProxyAllocs {
		t.Fatalf("%.1f allocations per proxied request, want ≤ %d", allocs, maxProxyAllocs)
	}
}
