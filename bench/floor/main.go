// Command floor is the benchmarks' floor: a bare fasthttp reverse proxy to
// one upstream, with no routing and no accounting. What modelgate costs above
// it is what its own logic adds (../../shared/BENCH.md). It streams replies
// whose request asked for a stream, flushing each read, as modelgate must.
//
//	floor -listen 127.0.0.1:0 -upstream 127.0.0.1:9001
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "listen address")
	upstream := flag.String("upstream", "", "upstream host:port")
	flag.Parse()
	hc := &fasthttp.HostClient{Addr: *upstream, MaxConns: 1 << 16}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		panic(err)
	}
	fmt.Printf("floor listening %s\n", ln.Addr())
	panic(fasthttp.Serve(ln, func(ctx *fasthttp.RequestCtx) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		ctx.Request.CopyTo(req)
		req.SetHost(*upstream)
		resp.StreamBody = bytes.Contains(ctx.PostBody(), []byte(`"stream":true`))
		err := hc.Do(req, resp)
		fasthttp.ReleaseRequest(req)
		if err != nil {
			fasthttp.ReleaseResponse(resp)
			ctx.Error(err.Error(), fasthttp.StatusBadGateway)
			return
		}
		ctx.SetStatusCode(resp.StatusCode())
		ctx.Response.Header.SetContentTypeBytes(resp.Header.ContentType())
		if body := resp.BodyStream(); body != nil {
			ctx.Response.ImmediateHeaderFlush = true
			ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
				defer fasthttp.ReleaseResponse(resp)
				buf := make([]byte, 4096)
				for {
					n, err := body.Read(buf)
					if n > 0 {
						_, _ = w.Write(buf[:n])
						if w.Flush() != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			})
			return
		}
		ctx.SetBody(resp.Body())
		fasthttp.ReleaseResponse(resp)
	}))
}
