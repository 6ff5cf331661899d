package router

import (
	"encoding/json"
	"net"
	"slices"
	"strconv"
	"testing"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/mockllm"
)

// An instance whose metadata.model lists models serves only those, matched
// against a route's model, aliases and upstream_model; an instance that
// lists none serves every route of its service. /v1/models agrees.
func TestMetadataModelLimitsWhatAnInstanceServes(t *testing.T) {
	g := newGateway(t, Config{Routes: []Route{
		{Model: "small", Service: "pool"},
		{Model: "large", Service: "pool", Aliases: []string{"big"}},
		{Model: "chat", Service: "pool", UpstreamModel: "Small-7B"},
		{Model: "none", Service: "pool"},
		{Model: "any", Service: "open"},
	}})
	var list []*discovery.Instance
	for _, m := range []struct{ name, models string }{
		{"s", "small, Small-7B"}, {"l", "big"},
	} {
		s, err := mockllm.Start("127.0.0.1:0", mockllm.Config{Name: m.name})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		host, port, _ := net.SplitHostPort(s.Addr())
		p, _ := strconv.Atoi(port)
		list = append(list, &discovery.Instance{Service: "pool", Host: host, Port: p, Weight: 1, Healthy: true,
			Enabled: true, Metadata: map[string]string{discovery.MetaModel: m.models}})
	}
	g.pool.Update(discovery.ServiceKey("", "pool"), list)
	g.mocks("open", 1, mockllm.Config{}, nil) // no metadata.model: serves any route of "open"

	for model, want := range map[string]string{"small": "s", "chat": "s", "large": "l", "big": "l", "any": "open-0"} {
		for i := range 6 {
			resp := g.do("POST", "/v1/chat/completions", `{"model":"`+model+`","messages":[{"role":"user","content":"`+strconv.Itoa(i)+`"}]}`)
			if resp.StatusCode() != 200 {
				t.Fatalf("%s: %d %s", model, resp.StatusCode(), resp.Body())
			}
			if got := string(resp.Header.Peek("X-Mock-Instance")); got != want {
				t.Fatalf("%s reached %s, want only %s", model, got, want)
			}
		}
	}
	resp := g.do("POST", "/v1/chat/completions", `{"model":"none","messages":[{"role":"user","content":"x"}]}`)
	if resp.StatusCode() != 503 {
		t.Fatalf("a model no instance lists: %d %s, want 503", resp.StatusCode(), resp.Body())
	}

	var ml modelList
	if err := json.Unmarshal(g.do("GET", "/v1/models", "").Body(), &ml); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range ml.Data {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	if want := []string{"any", "big", "chat", "large", "small"}; !slices.Equal(ids, want) {
		t.Fatalf("/v1/models = %v, want %v", ids, want)
	}
}
