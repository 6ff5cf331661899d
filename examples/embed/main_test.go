package main

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/internal/mockllm"
)

func TestEmbeddedGateway(t *testing.T) {
	mock, err := mockllm.Start("127.0.0.1:0", mockllm.Config{Name: "llama-0"})
	if err != nil {
		t.Fatal(err)
	}
	defer mock.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	handler, rt, err := newGateway([]string{mock.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: handler}
	var wg sync.WaitGroup
	wg.Go(func() { _ = rt.Run(ctx) })
	wg.Go(func() { _ = srv.Serve(ln) })
	defer func() { _ = srv.Shutdown(); cancel(); wg.Wait() }()

	// The gateway's own route.
	status, body, err := fasthttp.GetTimeout(nil, "http://"+ln.Addr().String()+"/hello", 5*time.Second)
	if err != nil || status != 200 || string(body) != "hello from my own gateway\n" {
		t.Fatalf("/hello: %d %q %v", status, body, err)
	}
	// modelgate's, through the official OpenAI client.
	c := openai.NewClient(option.WithBaseURL("http://"+ln.Addr().String()+"/v1/"), option.WithAPIKey("x"), option.WithMaxRetries(0))
	reply, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	if err != nil {
		t.Fatal(err)
	}
	if reply.Choices[0].Message.Content == "" || mock.Requests() != 1 {
		t.Fatalf("reply %+v, mock requests %d", reply, mock.Requests())
	}
}
