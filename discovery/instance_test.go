package discovery

import "testing"

// TestServesAny: a route's names match the models an instance lists; a
// name ending in "*" matches by prefix; an instance listing none serves all.
func TestServesAny(t *testing.T) {
	listed := &Instance{Models: []string{"qwen-2.5-7b", "llama-3"}, ModelListed: true}
	open := &Instance{}
	tests := []struct {
		in    *Instance
		names []string
		want  bool
	}{
		{listed, []string{"chat", "qwen-2.5-7b"}, true},
		{listed, []string{"chat"}, false},
		{listed, []string{"qwen-*"}, true},
		{listed, []string{"qwen-3*"}, false},
		{listed, []string{"*"}, true},
		{listed, []string{"qwen-2.5-7b-instruct"}, false},
		{listed, nil, true},
		{open, []string{"anything"}, true},
	}
	for _, tt := range tests {
		if got := tt.in.ServesAny(tt.names); got != tt.want {
			t.Errorf("%v serves %v: %v, want %v", tt.in.Models, tt.names, got, tt.want)
		}
	}
}
