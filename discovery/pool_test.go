package discovery

import (
	"context"
	"sync"
	"testing"
	"time"
)

func inst(svc, host string, port int, w float64, meta map[string]string) *Instance {
	return &Instance{Service: svc, Host: host, Port: port, Weight: w, Healthy: true, Enabled: true, Metadata: meta}
}

func TestParseMetadata(t *testing.T) {
	tests := []struct {
		name     string
		meta     map[string]string
		wantErrs int
		check    func(t *testing.T, in *Instance)
	}{
		{"defaults", nil, 0, func(t *testing.T, in *Instance) {
			if in.BasePath != "/v1" || in.Scheme != "http" || len(in.Models) != 1 || in.Models[0] != "qwen" || in.Group != DefaultGroup {
				t.Errorf("defaults: %+v", in)
			}
		}},
		{"contract", map[string]string{"model": "a, b", "version": "v2", "base_path": "/api/v1/", "scheme": "https",
			"max_concurrency": "8", "drain": "true", "cred_ref": "k", "gpu": "a100"}, 0, func(t *testing.T, in *Instance) {
			if len(in.Models) != 2 || in.Models[1] != "b" || in.Version != "v2" || in.BasePath != "/api/v1" ||
				in.Scheme != "https" || in.MaxConcurrency != 8 || !in.Drain || in.CredRef != "k" {
				t.Errorf("parsed: %+v", in)
			}
			if len(in.Tags) != 1 || in.Tags["gpu"] != "a100" {
				t.Errorf("tags = %v, want only gpu", in.Tags)
			}
			if in.Usable() {
				t.Error("draining instance is usable")
			}
		}},
		{"bad values keep defaults", map[string]string{"max_concurrency": "-1", "drain": "maybe", "scheme": "ftp"}, 3,
			func(t *testing.T, in *Instance) {
				if in.MaxConcurrency != 0 || in.Drain || in.Scheme != "http" || !in.Usable() {
					t.Errorf("parsed: %+v", in)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := inst("qwen", "127.0.0.1", 9000, 1, tt.meta)
			if errs := in.Parse(); len(errs) != tt.wantErrs {
				t.Fatalf("errors = %v, want %d", errs, tt.wantErrs)
			}
			if in.ID() != "LLM@@qwen#127.0.0.1:9000" {
				t.Errorf("ID = %q", in.ID())
			}
			tt.check(t, in)
		})
	}
}

func TestPoolUpdateDiffAndVersion(t *testing.T) {
	p := NewPool()
	key := ServiceKey("LLM", "qwen")
	s0 := p.Snapshot()

	d := p.Update(key, []*Instance{inst("qwen", "10.0.0.1", 1, 1, nil), inst("qwen", "10.0.0.2", 1, 1, nil)})
	if len(d.Added) != 2 {
		t.Fatalf("added = %d, want 2", len(d.Added))
	}
	select {
	case <-s0.Changed():
	default:
		t.Fatal("old snapshot not notified")
	}
	s1 := p.Snapshot()
	if s1.Version != 1 || len(s1.Service(key).Instances) != 2 {
		t.Fatalf("snapshot v%d", s1.Version)
	}

	// The same list again changes nothing and keeps the version.
	if d := p.Update(key, []*Instance{inst("qwen", "10.0.0.2", 1, 1, nil), inst("qwen", "10.0.0.1", 1, 1, nil)}); !d.Empty() {
		t.Fatalf("unchanged update gave %+v", d)
	}
	if p.Snapshot() != s1 {
		t.Fatal("unchanged update published a snapshot")
	}

	d = p.Update(key, []*Instance{inst("qwen", "10.0.0.1", 1, 5, nil), inst("other", "10.0.0.9", 1, 1, nil)})
	if len(d.Changed) != 1 || len(d.Removed) != 1 || len(d.Added) != 0 {
		t.Fatalf("diff = %+v", d)
	}
	if got := p.Snapshot().Service(key).Instances; len(got) != 1 || got[0].Weight != 5 {
		t.Fatalf("instances = %+v", got)
	}
	if s1.Service(key).Instances[0].Weight != 1 {
		t.Fatal("old snapshot was modified")
	}

	p.Update(key, nil)
	if svc := p.Snapshot().Service(key); svc == nil || len(svc.Instances) != 0 {
		t.Fatal("empty update should keep the service with no instances")
	}
	p.Remove(key)
	if p.Snapshot().Service(key) != nil {
		t.Fatal("removed service still present")
	}
}

func TestPoolConcurrentReadersAndWriters(t *testing.T) {
	p := NewPool()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				p.Update(ServiceKey("", "s"), []*Instance{inst("s", "h", w*1000+i, 1, nil)})
			}
		})
	}
	wg.Go(func() {
		var v uint64
		for v < 800 {
			s, err := p.WaitChange(ctx, v)
			if err != nil {
				t.Error(err)
				return
			}
			if s.Version <= v {
				t.Errorf("version went from %d to %d", v, s.Version)
			}
			v = s.Version
		}
	})
	wg.Wait()
}
