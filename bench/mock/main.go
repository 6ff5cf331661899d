// Command mock runs internal/mockllm as a process of its own, for the
// end-to-end benchmarks and chaos runs (make bench, make chaos), where an
// instance must be killable with SIGKILL and pinned to a CPU.
//
//	mock -listen 127.0.0.1:0 -latency 20ms -chunks 20 -gap 1ms
//	mock -nacos 127.0.0.1:18888 -group CHAOS -service chat -log /tmp/m1.log
//
// It prints "mock listening ADDR" on stdout once it serves (and "mock
// registered" once registered in Nacos, with -nacos). Besides the mock's own
// endpoints it serves a control API:
//
//	POST /_mock/set?latency=500ms&gap=50ms&chunks=20&words=47&fail=0.1
//	POST /_mock/mode?m=normal|hang|close|close-mid-stream
//	POST /_mock/deregister, POST /_mock/register   (with -nacos)
//	GET  /_mock/stats                                {"requests":N}
//
// With -log FILE it appends "a UNIXNANO ID" when a model request arrives and
// "c UNIXNANO ID" when it was answered with 200 (ID is the X-Request-Id), one
// unbuffered write each, so the record survives a SIGKILL.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"
	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/discovery/nacos"
	"github.com/modelgate/modelgate/internal/mockllm"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mock:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "listen address")
	name := flag.String("name", "mock", "instance name (X-Mock-Instance)")
	latency := flag.Duration("latency", 0, "latency before a reply or a stream's first event")
	jitter := flag.Duration("jitter", 0, "extra random latency in [0, jitter)")
	words := flag.Int("words", 47, "reply words (47 words: a 584-byte chat reply)")
	chunks := flag.Int("chunks", 20, "content chunks per stream")
	gap := flag.Duration("gap", 0, "pause between stream chunks")
	fail := flag.Float64("fail", 0, "fraction of requests failed with 500")
	logPath := flag.String("log", "", "append arrivals and completions to this file")
	nacosAddr := flag.String("nacos", "", "register in this Nacos (host:port)")
	group := flag.String("group", "LLM", "Nacos group")
	service := flag.String("service", "chat", "Nacos service")
	weight := flag.Float64("weight", 1, "Nacos weight")
	meta := flag.String("meta", "", "Nacos metadata, k=v,k2=v2")
	nacosDir := flag.String("nacos-dir", "", "directory for the Nacos client's cache and logs (default: a temporary one, removed on exit)")
	flag.Parse()

	m := mockllm.New(mockllm.Config{Name: *name, Latency: *latency, Jitter: *jitter, ReplyWords: *words,
		StreamChunks: *chunks, ChunkGap: *gap, FailRate: *fail})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	c := &ctl{mock: m, handler: m.Handler()}
	if *logPath != "" {
		if c.log, err = os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return err
		}
	}
	srv := &fasthttp.Server{Handler: c.serve, Name: "mockllm", NoDefaultDate: true, Logger: quiet{},
		ReadBufferSize: 16 << 10, MaxRequestBodySize: 64 << 20, DisablePreParseMultipartForm: true}
	go func() { _ = srv.Serve(ln) }()
	addr := ln.Addr().(*net.TCPAddr)
	fmt.Printf("mock listening %s\n", addr)

	if *nacosAddr != "" {
		r, err := newRegistration(*nacosAddr, *nacosDir, vo.RegisterInstanceParam{
			Ip: addr.IP.String(), Port: uint64(addr.Port), Weight: *weight, Enable: true, Healthy: true,
			Ephemeral: true, Metadata: parseMeta(*meta), ServiceName: *service, GroupName: *group,
		})
		if err != nil {
			return err
		}
		defer r.close()
		c.reg = r
		if err := r.register(); err != nil {
			return err
		}
		fmt.Println("mock registered")
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	if c.reg != nil {
		_ = c.reg.deregister()
	}
	return nil // the process ends: no need to drain connections
}

// ctl wraps the mock's handler with the control API and the request log.
type ctl struct {
	mock    *mockllm.Server
	handler fasthttp.RequestHandler
	reg     *registration
	logMu   sync.Mutex
	log     *os.File
}

func (c *ctl) serve(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	if strings.HasPrefix(path, "/_mock/") {
		c.control(ctx, path)
		return
	}
	model := c.log != nil && strings.HasPrefix(path, "/v1/")
	var id string
	if model {
		id = string(ctx.Request.Header.Peek("X-Request-Id"))
		c.record('a', id)
	}
	c.handler(ctx)
	// A request cut by ModeCloseConn, or one that hung until the server
	// closed, is marked Connection: close: it was not answered.
	if model && ctx.Response.StatusCode() == 200 && !ctx.Response.ConnectionClose() {
		c.record('c', id)
	}
}

func (c *ctl) record(kind byte, id string) {
	line := fmt.Sprintf("%c %d %s\n", kind, time.Now().UnixNano(), id)
	c.logMu.Lock()
	_, _ = c.log.WriteString(line)
	c.logMu.Unlock()
}

func (c *ctl) control(ctx *fasthttp.RequestCtx, path string) {
	var err error
	switch path {
	case "/_mock/set":
		err = c.set(ctx.QueryArgs())
	case "/_mock/mode":
		switch m := string(ctx.QueryArgs().Peek("m")); m {
		case "normal":
			c.mock.SetMode(mockllm.ModeNormal)
		case "hang":
			c.mock.SetMode(mockllm.ModeHang)
		case "close":
			c.mock.SetMode(mockllm.ModeCloseConn)
		case "close-mid-stream":
			c.mock.SetMode(mockllm.ModeCloseMidStream)
		default:
			err = fmt.Errorf("unknown mode %q", m)
		}
	case "/_mock/deregister", "/_mock/register":
		switch {
		case c.reg == nil:
			err = fmt.Errorf("not started with -nacos")
		case path == "/_mock/register":
			err = c.reg.register()
		default:
			err = c.reg.deregister()
		}
	case "/_mock/stats":
		ctx.SetContentType("application/json")
		fmt.Fprintf(ctx, `{"requests":%d}`, c.mock.Requests())
		return
	default:
		err = fmt.Errorf("unknown control path %s", path)
	}
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusBadRequest)
		return
	}
	ctx.SetBodyString("ok\n")
}

func (c *ctl) set(args *fasthttp.Args) error {
	var errs []error
	dur := func(k string, dst *time.Duration) {
		if v := args.Peek(k); v != nil {
			d, err := time.ParseDuration(string(v))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
			}
			*dst = d
		}
	}
	num := func(k string, dst *int) {
		if v := args.Peek(k); v != nil {
			n, err := strconv.Atoi(string(v))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
			}
			*dst = n
		}
	}
	c.mock.Set(func(cfg *mockllm.Config) {
		dur("latency", &cfg.Latency)
		dur("jitter", &cfg.Jitter)
		dur("gap", &cfg.ChunkGap)
		num("chunks", &cfg.StreamChunks)
		num("words", &cfg.ReplyWords)
		if v := args.Peek("fail"); v != nil {
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("fail: %w", err))
			}
			cfg.FailRate = f
		}
	})
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

func parseMeta(s string) map[string]string {
	if s == "" {
		return nil
	}
	out := map[string]string{}
	for kv := range strings.SplitSeq(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

// registration is the instance's own Nacos naming client, as a model
// server's sidecar would have: a SIGKILL drops its connection and so the
// ephemeral instance.
type registration struct {
	client naming_client.INamingClient
	param  vo.RegisterInstanceParam
	dir    string
}

func newRegistration(addr, dir string, p vo.RegisterInstanceParam) (*registration, error) {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "modelgate-bench-mock-"); err != nil {
			return nil, err
		}
	}
	c, err := nacos.Dial(nacos.ClientConfig{Servers: []string{addr},
		CacheDir: filepath.Join(dir, "cache"), LogDir: filepath.Join(dir, "log")})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	client := c.Naming()
	return &registration{client: client, param: p, dir: dir}, nil
}

func (r *registration) register() error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := r.client.RegisterInstance(r.param)
		if err == nil && ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("register: ok=%v err=%v", ok, err)
		}
		time.Sleep(200 * time.Millisecond) // the client may still be connecting
	}
}

func (r *registration) deregister() error {
	ok, err := r.client.DeregisterInstance(vo.DeregisterInstanceParam{Ip: r.param.Ip, Port: r.param.Port,
		ServiceName: r.param.ServiceName, GroupName: r.param.GroupName, Ephemeral: true})
	if err == nil && !ok {
		err = fmt.Errorf("deregister refused")
	}
	return err
}

func (r *registration) close() {
	r.client.CloseClient()
	_ = os.RemoveAll(r.dir)
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}
