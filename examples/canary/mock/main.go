// Command mock runs one OpenAI-compatible mock model server, for the canary
// walkthrough: go run ./examples/canary/mock -addr 127.0.0.1:9101 -name v1
package main

import (
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/modelgate/modelgate/internal/mockllm"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9101", "listen address")
	name := flag.String("name", "v1", "instance name, sent back in X-Mock-Instance")
	latency := flag.Duration("latency", 20*time.Millisecond, "time before each reply")
	flag.Parse()
	s, err := mockllm.Start(*addr, mockllm.Config{Name: *name, Latency: *latency})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("mock model %s on %s", *name, s.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	_ = s.Close()
}
