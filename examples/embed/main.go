// Command embed is a custom fasthttp gateway that mounts modelgate's
// OpenAI-compatible handler beside routes of its own, using only
// modelgate's public library API.
//
//	go run ./examples/embed -listen :8081 -upstream 127.0.0.1:9001
//
// Its own routes: GET /hello and GET /gateway/pool. Everything under /v1/
// goes to modelgate, which forwards it to the instances of service
// "llama" (here a fixed list; in production a nacos.Watcher feeds the pool).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/router"
)

// newGateway builds the gateway over the given upstream addresses. It
// returns the handler to serve and the router, whose Run must be started.
func newGateway(upstreams []string) (fasthttp.RequestHandler, *router.Router, error) {
	// Feed the pool yourself (or run a discovery.Source such as
	// nacos.Watcher over it).
	pool := discovery.NewPool()
	var instances []*discovery.Instance
	for _, addr := range upstreams {
		host, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, nil, err
		}
		port, _ := strconv.Atoi(portStr)
		instances = append(instances, &discovery.Instance{Service: "llama", Host: host, Port: port,
			Weight: 1, Healthy: true, Enabled: true, Metadata: map[string]string{"version": "v1"}})
	}
	pool.Update(discovery.ServiceKey(discovery.DefaultGroup, "llama"), instances)
	pool.MarkSynced()

	rt, err := router.New(pool, router.Config{
		Routes: []router.Route{{Model: "llama", Aliases: []string{"gpt-4o-mini"}, Service: "llama", Retries: 1}},
	})
	if err != nil {
		return nil, nil, err
	}
	api := rt.Handler
	handler := func(ctx *fasthttp.RequestCtx) {
		path := string(ctx.Path())
		switch {
		case path == "/hello":
			ctx.SetBodyString("hello from my own gateway\n")
		case path == "/gateway/pool":
			ctx.SetContentType("application/json")
			var out []string
			for _, svc := range pool.Snapshot().Services() {
				for _, in := range svc.Instances {
					out = append(out, in.ID())
				}
			}
			_ = json.NewEncoder(ctx).Encode(out)
		case strings.HasPrefix(path, "/v1/"):
			api(ctx)
		default:
			ctx.Error("not found", fasthttp.StatusNotFound)
		}
	}
	return handler, rt, nil
}

func main() {
	listen := flag.String("listen", ":8081", "listen address")
	upstream := flag.String("upstream", "127.0.0.1:9001", "comma-separated model server addresses")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	handler, rt, err := newGateway(strings.Split(*upstream, ","))
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = rt.Run(ctx) }()
	srv := &fasthttp.Server{Handler: handler, ErrorHandler: rt.ErrorHandler, MaxRequestBodySize: rt.MaxBodySize()}
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown()
	}()
	log.Printf("embedded gateway on %s, /v1/ -> modelgate -> %s", *listen, *upstream)
	if err := srv.ListenAndServe(*listen); err != nil {
		log.Fatal(err)
	}
}
