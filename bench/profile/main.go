// Command profile serves modelgate's router the way the daemon does (static
// pool, metrics, access log on stdout) with net/http/pprof on a side
// listener, to profile the cost the benchmarks measure — the daemon has no
// pprof endpoint.
//
//	profile -pool pool.yaml -routes fast,slow,stream -listen 127.0.0.1:8080 -pprof 127.0.0.1:6060
//	go tool pprof -seconds 10 http://127.0.0.1:6060/debug/pprof/profile
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	_ "net/http/pprof" // the point of this command
	"os"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/discovery/static"
	"github.com/modelgate/modelgate/router"
)

func main() {
	pool := flag.String("pool", "pool.yaml", "static pool file")
	routes := flag.String("routes", "fast", "comma-separated route names (= services)")
	listen := flag.String("listen", "127.0.0.1:8080", "API listener")
	pprofAddr := flag.String("pprof", "127.0.0.1:6060", "pprof listener")
	accessLog := flag.Bool("access-log", true, "write the access log to stdout, as the daemon does")
	flag.Parse()

	p := discovery.NewPool()
	var cfg router.Config
	for r := range strings.SplitSeq(*routes, ",") {
		cfg.Routes = append(cfg.Routes, router.Route{Model: r})
	}
	opts := []router.Option{router.WithMetrics(metrics.NewSet())}
	if *accessLog {
		opts = append(opts, router.WithAccessLog(zerolog.New(os.Stdout).With().Timestamp().Logger()))
	}
	rt, err := router.New(p, cfg, opts...)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	go func() { _ = static.NewFile(*pool).Run(ctx, p) }()
	go func() { _ = rt.Run(ctx) }()
	go func() { log.Fatal(http.ListenAndServe(*pprofAddr, nil)) }()
	srv := &fasthttp.Server{Handler: rt.Handler, ErrorHandler: rt.ErrorHandler, Name: "modelgate",
		MaxRequestBodySize: rt.MaxBodySize(), ReadTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute,
		NoDefaultServerHeader: true}
	log.Printf("profile listening %s, pprof on %s", *listen, *pprofAddr)
	log.Fatal(srv.ListenAndServe(*listen))
}
