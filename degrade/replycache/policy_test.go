package replycache_test

import (
	"testing"

	"github.com/modelgate/modelgate/degrade/replycache"
)

func TestCacheable(t *testing.T) {
	custom := replycache.Rules{Always: []string{"chat"}}
	for _, tc := range []struct {
		api, body   string
		def, custom bool
	}{
		{"embeddings", `{"model":"e","input":"x"}`, true, false},
		{"chat", `{"model":"c","temperature":0}`, true, true},
		{"chat", `{"model":"c","temperature":0.0}`, true, true},
		{"chat", `{"model":"c"}`, false, true},
		{"chat", `{"model":"c","temperature":0.2}`, false, true},
		{"chat", `{"model":"c","temperature":"0"}`, false, true},
		{"completions", `{"model":"c","temperature":0}`, true, false},
		{"passthrough", `{"temperature":0}`, false, false},
	} {
		t.Run(tc.api+tc.body, func(t *testing.T) {
			if got := replycache.Cacheable(tc.api, []byte(tc.body)); got != tc.def {
				t.Fatalf("Cacheable = %v", got)
			}
			if got := replycache.DefaultRules().Cacheable(tc.api, []byte(tc.body)); got != tc.def {
				t.Fatalf("DefaultRules().Cacheable = %v", got)
			}
			if got := custom.Cacheable(tc.api, []byte(tc.body)); got != tc.custom {
				t.Fatalf("custom Cacheable = %v", got)
			}
			if (replycache.Rules{}).Cacheable(tc.api, []byte(tc.body)) {
				t.Fatal("zero Rules cache something")
			}
		})
	}
}
