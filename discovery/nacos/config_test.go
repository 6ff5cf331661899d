package nacos_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/modelgate/modelgate/discovery/nacos"
	"github.com/modelgate/modelgate/internal/nacostest"
)

// TestCompareAndPublish against the real Nacos: a write against the
// content last read wins, one against stale content is refused and leaves
// the entry as it was.
func TestCompareAndPublish(t *testing.T) {
	c, err := nacos.DialConfig(nacos.ClientConfig{Servers: []string{nacostest.Addr(t)}})
	if err != nil {
		t.Fatal(err)
	}
	group, id := fmt.Sprintf("CAS_%d", rand.Uint32()), "cas.yaml"
	t.Cleanup(func() { _ = c.Publish(id, group, "# test over"); c.Close() })
	if ok, err := c.CompareAndPublish(id, group, "a: 1", ""); !ok || err != nil {
		t.Fatalf("create: %v %v", ok, err)
	}
	if ok, err := c.CompareAndPublish(id, group, "a: 2", "a: 1"); !ok || err != nil {
		t.Fatalf("update from the current content: %v %v", ok, err)
	}
	if ok, err := c.CompareAndPublish(id, group, "a: 3", "a: 1"); ok || err != nil {
		t.Fatalf("update from stale content: %v %v, want refused", ok, err)
	}
	deadline := time.Now().Add(5 * time.Second) // Nacos serves reads from a cache updated shortly after a write
	for {
		got, err := c.Get(id, group)
		if err == nil && got == "a: 2" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("entry holds %q (%v), want the accepted write", got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
