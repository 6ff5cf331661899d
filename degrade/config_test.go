package degrade_test

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/modelgate/modelgate/degrade"
)

// TestConfigValidate: negative durations and sizes and unknown classes are
// refused, each naming its field.
func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  degrade.Config
		want string
	}{
		{degrade.Config{EnterAfter: -time.Second}, "enter_after: must not be negative"},
		{degrade.Config{ExitAfter: -1}, "exit_after"},
		{degrade.Config{Window: -1}, "window"},
		{degrade.Config{Interval: -1}, "interval"},
		{degrade.Config{QueueSize: -1}, "queue_size"},
		{degrade.Config{Cache: degrade.CacheConfig{MaxBytes: -1}}, "cache.max_bytes"},
		{degrade.Config{Cache: degrade.CacheConfig{StaleTTL: -1}}, "cache.stale_ttl"},
		{degrade.Config{Routes: []degrade.Route{{Name: "a", Class: degrade.Class(9)}}}, "routes[0].class"},
		{degrade.Config{EnterAfter: time.Second, Routes: []degrade.Route{{Name: "a", Class: degrade.Sheddable}}}, ""},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

// TestClassFromYAML: names decode in any case; an unknown name decodes to
// an invalid class without ending the decoding of the rest.
func TestClassFromYAML(t *testing.T) {
	var v struct {
		A, B degrade.Class
		N    int
	}
	if err := yaml.Unmarshal([]byte("a: Critical\nb: urgent\nn: 3\n"), &v); err != nil {
		t.Fatal(err)
	}
	if v.A != degrade.Critical || v.B.Valid() || v.N != 3 {
		t.Errorf("%+v", v)
	}
	if err := yaml.Unmarshal([]byte("a: [x]\n"), &v); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("a list: %v", err)
	}
}
