package engine_test

import (
	"testing"

	"github.com/modelgate/modelgate/balancer"
	"github.com/modelgate/modelgate/balancer/engine"
)

// prompt8K is an 8 KiB chat prompt of a conversation the index knows.
func prompt8K(b *balancer.Balancer) []byte {
	p := conversation(3, 0)
	for t := 1; len(p) < 8<<10; t++ {
		p = conversation(3, t)
	}
	p = p[:8<<10]
	picked, _ := b.Pick(&balancer.Request{Route: "chat", Prompt: p})
	picked.Done(balancer.Result{Status: 200})
	return p
}

func TestPickWithPrefixDoesNotAllocate(t *testing.T) {
	b := pool(64, engine.Settings{})
	req := &balancer.Request{Route: "chat", Prompt: prompt8K(b)}
	if n := testing.AllocsPerRun(1000, func() {
		p, err := b.Pick(req)
		if err != nil {
			t.Fatal(err)
		}
		p.Done(balancer.Result{Status: 200})
	}); n != 0 {
		t.Errorf("Pick+Done with an 8 KiB prompt allocates %.1f times", n)
	}
}

// BenchmarkPickPrefix measures one pick with prefix scoring over 64
// instances for an 8 KiB prompt: hashing 32 blocks, looking them up,
// scoring every candidate, recording the choice.
func BenchmarkPickPrefix(b *testing.B) {
	bal := pool(64, engine.Settings{})
	req := &balancer.Request{Route: "chat", Prompt: prompt8K(bal)}
	benchPick(b, bal, req)
}

// BenchmarkPickPrefixLoaded is BenchmarkPickPrefix with two requests in
// flight on every instance, the home included: the home's load no longer
// settles the pick by itself, so every candidate is scored.
func BenchmarkPickPrefixLoaded(b *testing.B) {
	bal := pool(64, engine.Settings{})
	req := &balancer.Request{Route: "chat", Prompt: prompt8K(bal)}
	var held []balancer.Picked
	for i := range 64 * 2 {
		p, err := bal.Pick(&balancer.Request{Route: "chat", Prompt: conversation(1000+i, 0)})
		if err != nil {
			b.Fatal(err)
		}
		held = append(held, p)
	}
	b.Cleanup(func() {
		for _, p := range held {
			p.Done(balancer.Result{Status: 200})
		}
	})
	benchPick(b, bal, req)
}

// benchPick measures Pick and Done of req on bal.
func benchPick(b *testing.B, bal *balancer.Balancer, req *balancer.Request) {
	res := balancer.Result{Status: 200}
	b.ReportAllocs()
	for b.Loop() {
		p, err := bal.Pick(req)
		if err != nil {
			b.Fatal(err)
		}
		p.Done(res)
	}
}
