package router_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/discovery/nacos"
	"github.com/modelgate/modelgate/router"
)

// Example wires modelgate as a library: a Nacos watcher feeds the pool, the
// router serves the OpenAI API over it. (The README shows this snippet.)
func Example() {
	ctx := context.Background()
	dir := filepath.Join(os.TempDir(), "modelgate-example")

	pool := discovery.NewPool()
	client, err := nacos.Dial(nacos.ClientConfig{Servers: []string{"127.0.0.1:8848"},
		CacheDir: filepath.Join(dir, "cache"), LogDir: filepath.Join(dir, "log")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	watcher, err := nacos.NewWatcher(client, nacos.Settings{Groups: []string{"LLM"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() { _ = watcher.Run(ctx, pool) }()

	rt, err := router.New(pool, router.Config{
		Routes: []router.Route{{Model: "chat", Service: "qwen-7b"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() { _ = rt.Run(ctx) }()
	// The router's limits and OpenAI-shaped errors for what fasthttp rejects
	// itself (too large, malformed, slow): fasthttp's defaults are a 4 MiB
	// body limit and plain-text 400s.
	srv := &fasthttp.Server{Handler: rt.Handler, ErrorHandler: rt.ErrorHandler,
		MaxRequestBodySize: rt.MaxBodySize(), ReadBufferSize: rt.MaxHeaderSize()}
	_ = srv.ListenAndServe(":8080")
}
