package static

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/modelgate/modelgate/discovery"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParse(t *testing.T) {
	tests := []struct {
		name, yaml string
		wantErr    bool
		check      func(t *testing.T, m map[string][]*discovery.Instance)
	}{
		{"defaults", "instances:\n  - {service: a, addr: '127.0.0.1:1'}\n", false, func(t *testing.T, m map[string][]*discovery.Instance) {
			in := m["LLM@@a"][0]
			if in.Weight != 1 || !in.Healthy || !in.Enabled || in.Port != 1 {
				t.Errorf("%+v", in)
			}
		}},
		{"explicit", "instances:\n  - {service: a, group: G, addr: 'h:2', weight: 0, enabled: false, metadata: {version: v2}}\n", false,
			func(t *testing.T, m map[string][]*discovery.Instance) {
				in := m["G@@a"][0]
				if in.Weight != 0 || in.Enabled || in.Metadata["version"] != "v2" {
					t.Errorf("%+v", in)
				}
			}},
		{"empty file", "", false, func(t *testing.T, m map[string][]*discovery.Instance) {
			if len(m) != 0 {
				t.Error(m)
			}
		}},
		{"unknown field", "instances:\n  - {service: a, addr: 'h:1', wieght: 2}\n", true, nil},
		{"no service", "instances:\n  - {addr: 'h:1'}\n", true, nil},
		{"bad addr", "instances:\n  - {service: a, addr: 'nope'}\n", true, nil},
		{"bad port", "instances:\n  - {service: a, addr: 'h:99999'}\n", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.yaml))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
		})
	}
}

func TestFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pool.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("instances:\n  - {service: a, addr: '127.0.0.1:1'}\n  - {service: b, addr: '127.0.0.1:2'}\n")
	pool := discovery.NewPool()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewFile(path, WithInterval(10*time.Millisecond)).Run(ctx, pool) }()
	defer func() { cancel(); <-done }()

	wait := func(cond func(*discovery.Snapshot) bool) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		defer wcancel()
		for s := pool.Snapshot(); !cond(s); {
			var err error
			if s, err = pool.WaitChange(wctx, s.Version); err != nil {
				t.Fatal("pool did not reach the expected state")
			}
		}
	}
	wait(func(s *discovery.Snapshot) bool { return s.Service("LLM@@a") != nil && s.Service("LLM@@b") != nil })

	write("instances: [ {service: a, addr: '127.0.0.1:1', weight: 4} ]\n")
	wait(func(s *discovery.Snapshot) bool {
		a := s.Service("LLM@@a")
		return s.Service("LLM@@b") == nil && a != nil && a.Instances[0].Weight == 4
	})

	v := pool.Snapshot().Version
	write("instances: [ {service: a, addr: broken} ]\n")
	write("instances: [ {service: a, addr: '127.0.0.1:1', weight: 4}, {service: c, addr: '127.0.0.1:3'} ]\n")
	wait(func(s *discovery.Snapshot) bool { return s.Service("LLM@@c") != nil })
	if a := pool.Snapshot().Service("LLM@@a"); a == nil || len(a.Instances) != 1 || pool.Snapshot().Version <= v {
		t.Fatal("service a lost across a rejected file")
	}
}
