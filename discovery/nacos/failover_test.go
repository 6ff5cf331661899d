//go:build !race

// Built without -race, as the restart test: the SDK races with itself when
// its server goes away (docs/decisions/0002-nacos-restart-tests-without-race.md).
// `make test` runs it in its second, non-race pass.

package nacos

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/nacostest"
	"github.com/modelgate/modelgate/internal/testkit"
)

// subscribers returns how many clients subscribe to group@@service on the
// Nacos at addr (Nacos 3's admin API), -1 when it does not answer.
func subscribers(addr, group, service string) int {
	q := url.Values{"serviceName": {service}, "groupName": {group}}
	c := &http.Client{Timeout: 3 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://" + addr + "/nacos/v3/admin/ns/service/subscribers?" + q.Encode())
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			TotalCount int `json:"totalCount"`
		} `json:"data"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		return -1
	}
	return body.Data.TotalCount
}

// Two standalone Nacos servers, each holding the same registrations (the
// model servers register in both), the watcher configured with both. The
// server the SDK's gRPC connection chose, which is also the one the HTTP
// reads go to first, is stopped: the pool keeps every instance, the SDK
// reconnects to the other server and subscribes there, and a change made
// in the survivor reaches the pool by push alone (no listing, no backstop).
func TestRealNacosTwoServersFailover(t *testing.T) {
	srvs := []*nacostest.Server{nacostest.StartPrivateWith(t), nacostest.StartPrivateWith(t)}
	addrs := []string{srvs[0].Addr(), srvs[1].Addr()}
	group := testkit.UniqueGroup("ITTWO")
	key := discovery.ServiceKey(group, "qwen")
	regs := make([][]*nacostest.Instance, 2) // by server
	for i, a := range addrs {
		for _, port := range []int{41081, 41082} {
			regs[i] = append(regs[i], nacostest.Register(t, a, group, "qwen", "127.0.0.1", port, 1, nil))
		}
	}

	dir := t.TempDir()
	client, err := Dial(ClientConfig{Servers: addrs, CacheDir: filepath.Join(dir, "c"), LogDir: filepath.Join(dir, "l")})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	w, err := NewWatcher(client, Settings{Groups: []string{group}, Empty: EmptyApply,
		ListInterval: time.Hour, ReconcileInterval: time.Hour, ReconcileRate: 0.001})
	if err != nil {
		t.Fatal(err)
	}
	pool, stop := runBench(w)
	defer stop()
	waitFor(t, pool, 20*time.Second, func(s *discovery.Snapshot) bool { return count(key)(s) == 2 })

	// Which server did the SDK connect to? It picks one at random.
	first := -1
	testkit.Eventually(t, 10*time.Second, "the watcher's subscription on one server", func() bool {
		for i, a := range addrs {
			if subscribers(a, group, "qwen") > 0 {
				first = i
				return true
			}
		}
		return false
	})
	second := 1 - first
	client.api.mu.Lock()
	client.api.next = first // the HTTP reads go there first too
	client.api.mu.Unlock()
	t.Logf("SDK connected to server %d (%s); stopping it", first, addrs[first])

	srvs[first].Stop(t)
	testkit.Eventually(t, 30*time.Second, "the SDK's subscription on the second server", func() bool {
		return subscribers(addrs[second], group, "qwen") > 0
	})
	if n := count(key)(pool.Snapshot()); n != 2 {
		t.Fatalf("pool has %d instances after the first server died, want 2", n)
	}

	// A change in the survivor only: a push from it, a read from it.
	regs[second][0].Deregister()
	waitFor(t, pool, 10*time.Second, func(s *discovery.Snapshot) bool {
		l := instances(pool, key)
		return len(l) == 1 && l[0].Port == 41082
	})
	regs[second][1].Update(3, true)
	waitFor(t, pool, 10*time.Second, func(s *discovery.Snapshot) bool {
		l := instances(pool, key)
		return len(l) == 1 && l[0].Weight == 3
	})
}
