package nacos_test

import (
	"testing"
	"time"

	"github.com/modelgate/modelgate/discovery/nacos"
	"github.com/modelgate/modelgate/internal/nacostest"
	"github.com/modelgate/modelgate/internal/testkit"
)

// TestCompareAndPublish against the real Nacos: a write against the
// content last read wins, one against stale content is refused and leaves
// the entry as it was.
func TestCompareAndPublish(t *testing.T) {
	c, err := nacos.DialConfig(nacos.ClientConfig{Servers: []string{nacostest.Addr(t)}})
	if err != nil {
		t.Fatal(err)
	}
	group, id := testkit.UniqueGroup("CAS"), "cas.yaml"
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
	// Nacos serves reads from a cache updated shortly after a write.
	var got string
	if !testkit.Await(5*time.Second, 50*time.Millisecond, func() bool {
		got, err = c.Get(id, group)
		return err == nil && got == "a: 2"
	}) {
		t.Fatalf("entry holds %q (%v), want the accepted write", got, err)
	}
}
