package nacos

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/testkit"
)

func metricValue(set *metrics.Set, name string) string {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for line := range strings.Lines(b.String()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			return v
		}
	}
	return ""
}

func isSynced(pool *discovery.Pool) bool {
	select {
	case <-pool.Synced():
		return true
	default:
		return false
	}
}

func TestRefusedLoginIsAnErrorNotAnEmptyPool(t *testing.T) {
	const key = "LLM@@qwen"
	f := newFake(true)
	f.set(key, mi("10.0.0.1", 1))
	f.authFail = true
	var logs testkit.Buffer
	log := zerolog.New(&logs)
	set := metrics.NewSet()
	clk := &clock{}
	pool, stop := start(t, f, Settings{EmptyGrace: time.Second,
		ReconcileInterval: 10 * time.Millisecond, ReconcileRate: 1000, ListInterval: 10 * time.Millisecond}, WithLogger(log), WithMetrics(set), WithClock(clk.now))
	defer stop()

	next(t, f.listed, 3)
	if isSynced(pool) {
		t.Fatal("pool synced although every login was refused")
	}
	if v := metricValue(set, `modelgate_nacos_errors_total{kind="auth"}`); v == "" || v == "0" {
		t.Fatalf("auth errors not counted: %q", v)
	}
	if out := logs.String(); !strings.Contains(out, `"level":"error"`) || !strings.Contains(out, "user not found") {
		t.Fatalf("refused login not logged at error with the server's message:\n%s", out)
	}

	// The password is fixed: the pool syncs.
	f.mu.Lock()
	f.authFail = false
	f.mu.Unlock()
	waitFor(t, pool, 2*time.Second, func(s *discovery.Snapshot) bool { return count(key)(s) == 1 })
	testkit.Eventually(t, 2*time.Second, "synced", func() bool { return isSynced(pool) })

	// The password changes under the running watcher: long past every grace
	// period, nothing is retired, because Nacos never said so.
	f.mu.Lock()
	f.authFail = true
	f.mu.Unlock()
	next(t, f.listed, 2)
	for range 5 {
		clk.advance(time.Hour)
		next(t, f.listed, 1)
	}
	if n := count(key)(pool.Snapshot()); n != 1 {
		t.Fatalf("pool has %d instances after refused logins, want the 1 it had", n)
	}
}

func TestSnapshotServesWhenNacosIsDownAtStart(t *testing.T) {
	const a, b = "LLM@@a", "LLM@@b"
	path := filepath.Join(t.TempDir(), "pool.json")
	f := newFake(true)
	f.set(a, mi("10.0.0.1", 2))
	f.set(b, mi("10.0.0.2", 1), mi("10.0.0.3", 1))
	opts := Settings{SnapshotPath: path, SnapshotEvery: 10 * time.Millisecond,
		ReconcileInterval: time.Hour, ListInterval: 10 * time.Millisecond}
	pool, stop := start(t, f, opts)
	waitFor(t, pool, 2*time.Second, func(s *discovery.Snapshot) bool { return count(a)(s) == 1 && count(b)(s) == 2 })
	testkit.Eventually(t, 2*time.Second, "snapshot written", func() bool {
		got, _, err := discovery.ReadSnapshotFile(path)
		return err == nil && len(got[a]) == 1 && len(got[b]) == 2
	})
	stop()

	// A new watcher starts while Nacos is down: it serves the snapshot.
	f.mu.Lock()
	f.down = true
	f.mu.Unlock()
	set := metrics.NewSet()
	pool2, stop2 := start(t, f, Settings{SnapshotPath: path, ReconcileInterval: time.Hour, ListInterval: 10 * time.Millisecond}, WithMetrics(set))
	defer stop2()
	testkit.Eventually(t, 2*time.Second, "synced from the snapshot", func() bool { return isSynced(pool2) })
	if !pool2.Stale() {
		t.Fatal("pool from the snapshot not marked stale")
	}
	s := pool2.Snapshot()
	if count(a)(s) != 1 || count(b)(s) != 2 || s.Service(a).Instances[0].Weight != 2 || !s.Service(a).Instances[0].Usable() {
		t.Fatalf("snapshot pool: a=%d b=%d", count(a)(s), count(b)(s))
	}
	next(t, f.listed, 3)
	if count(b)(pool2.Snapshot()) != 2 {
		t.Fatal("snapshot pool changed while Nacos was still down")
	}

	// Nacos answers with a different view: it replaces the snapshot at once.
	f.mu.Lock()
	f.down = false
	delete(f.services, b)
	f.services[a] = append(f.services[a], mi("10.0.0.4", 1))
	f.mu.Unlock()
	waitFor(t, pool2, 2*time.Second, func(s *discovery.Snapshot) bool { return count(a)(s) == 2 && s.Service(b) == nil })
	testkit.Eventually(t, 2*time.Second, "stale cleared", func() bool { return !pool2.Stale() })
}

func TestNoSnapshotServedOnRefusedLogin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pool.json")
	p := discovery.NewPool()
	p.Update("LLM@@a", []*discovery.Instance{{Service: "a", Group: "LLM", Host: "10.0.0.1", Port: 1, Weight: 1, Healthy: true, Enabled: true}})
	if err := discovery.WriteSnapshotFile(path, p.Snapshot(), time.Now()); err != nil {
		t.Fatal(err)
	}
	f := newFake(true)
	f.authFail = true
	pool, stop := start(t, f, Settings{SnapshotPath: path, ReconcileInterval: time.Hour, ListInterval: 10 * time.Millisecond})
	defer stop()
	next(t, f.listed, 3)
	if isSynced(pool) || pool.Snapshot().Service("LLM@@a") != nil {
		t.Fatal("a refused login must leave the daemon not ready, not serving a snapshot")
	}
}

func TestBackstopReadsAreRateCapped(t *testing.T) {
	f := newFake(false)
	for i := range 200 {
		f.set(fmt.Sprintf("LLM@@s%03d", i), mi("10.0.0.1", 1))
	}
	pool, stop := start(t, f, Settings{ReconcileInterval: time.Millisecond, ReconcileRate: 20, ListInterval: time.Hour})
	defer stop()
	testkit.Eventually(t, 5*time.Second, "synced", func() bool { return isSynced(pool) })
	base := f.reads.Load() // the first listing read each service once
	if base < 200 {
		t.Fatalf("first listing read %d services, want 200", base)
	}
	begin := time.Now()
	testkit.Eventually(t, 5*time.Second, "backstop reads", func() bool { return f.reads.Load() >= base+5 })
	time.Sleep(time.Second) // the measured window itself, not a synchronisation
	reads := float64(f.reads.Load()-base) / time.Since(begin).Seconds()
	if reads > 20*1.25+1 {
		t.Fatalf("backstop read %.1f services/s, cap is 20", reads)
	}
}

func TestSnapshotFileIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pool.json")
	p := discovery.NewPool()
	p.Update("LLM@@a", []*discovery.Instance{{Service: "a", Group: "LLM", Host: "10.0.0.1", Port: 1, Weight: 1, Healthy: true, Enabled: true,
		Metadata: map[string]string{"model": "m", "gpu": "a100"}}})
	for range 3 {
		if err := discovery.WriteSnapshotFile(path, p.Snapshot(), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("left temporary files: %v", entries)
	}
	got, _, err := discovery.ReadSnapshotFile(path)
	if err != nil || len(got["LLM@@a"]) != 1 || got["LLM@@a"][0].Metadata["gpu"] != "a100" {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := discovery.ReadSnapshotFile(path); err == nil {
		t.Fatal("a corrupt snapshot must be an error")
	}
}
