package router

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/mockllm"
)

func modelBody(model string) string {
	return `{"model":` + strconv.Quote(model) + `,"messages":[{"role":"user","content":"hi"}]}`
}

// TestPatternRoutes: a name reaches the route that has it exactly, else
// the pattern with the longest prefix, else "*"; a pattern route without
// upstream_model sends the client's name on, one with it rewrites.
func TestPatternRoutes(t *testing.T) {
	g := newGateway(t, Config{Routes: []Route{
		{Model: "*", Service: "any", UpstreamModel: "default-model"},
		{Model: "qwen-*", Service: "qwen"},
		{Model: "qwen-3*", Service: "qwen3"},
		{Model: "qwen-max", Service: "max"},
	}})
	for _, svc := range []string{"any", "qwen", "qwen3", "max"} {
		g.mocks(svc, 1, mockllm.Config{}, nil)
	}
	tests := []struct{ model, instance, upstream, route string }{
		{"qwen-2.5-7b", "qwen-0", "qwen-2.5-7b", "qwen-*"},
		{"qwen-3-8b", "qwen3-0", "qwen-3-8b", "qwen-3*"},
		{"qwen-max", "max-0", "qwen-max", "qwen-max"},
		{"qwen-max-2", "qwen-0", "qwen-max-2", "qwen-*"}, // an exact name is no prefix
		{"qwen-*", "qwen-0", "qwen-*", "qwen-*"},
		{"llama-3", "any-0", "default-model", "*"},
		{"qwen", "any-0", "default-model", "*"}, // "qwen-*" needs the dash
	}
	for _, tt := range tests {
		resp := g.do("POST", "/v1/chat/completions", modelBody(tt.model))
		if resp.StatusCode() != 200 {
			t.Fatalf("%s: %d %s", tt.model, resp.StatusCode(), resp.Body())
		}
		if got := string(resp.Header.Peek("X-Mock-Instance")); got != tt.instance {
			t.Errorf("%s reached %s, want %s", tt.model, got, tt.instance)
		}
		if got := gjson.GetBytes(resp.Body(), "model").Str; got != tt.upstream {
			t.Errorf("%s was sent upstream as %q, want %q", tt.model, got, tt.upstream)
		}
		// Metrics are by route: a pattern is one series whatever names clients send.
		if v := g.metric(`modelgate_requests_total{model=` + strconv.Quote(tt.route) + `,code="200",type="normal"}`); v < 1 {
			t.Errorf("%s: no request counted for route %s", tt.model, tt.route)
		}
	}
	if v := g.metric(`modelgate_requests_total{model="qwen-2.5-7b",code="200",type="normal"}`); v != -1 {
		t.Errorf("a series for a client's name: %v", v)
	}
}

// instances puts one mock per metadata.model list in service svc.
func (g *gateway) instances(svc string, models ...string) {
	g.t.Helper()
	var list []*discovery.Instance
	for i, m := range models {
		s, err := mockllm.Start("127.0.0.1:0", mockllm.Config{Name: svc + "-" + strconv.Itoa(i)})
		if err != nil {
			g.t.Fatal(err)
		}
		g.t.Cleanup(func() { _ = s.Close() })
		host, port, _ := net.SplitHostPort(s.Addr())
		p, _ := strconv.Atoi(port)
		meta := map[string]string{}
		if m != "" {
			meta[discovery.MetaModel] = m
		}
		list = append(list, &discovery.Instance{Service: svc, Host: host, Port: p, Weight: 1, Healthy: true, Enabled: true, Metadata: meta})
	}
	g.pool.Update(discovery.ServiceKey("", svc), list)
	g.synced()
}

// TestPatternRouteInstancesServeTheName: a pattern route picks only
// instances whose metadata.model lists the very name sent; a name none
// lists is 404, as for an unknown model.
func TestPatternRouteInstancesServeTheName(t *testing.T) {
	g := newGateway(t, Config{Routes: []Route{{Model: "a-*", Service: "multi"}, {Model: "b-*", Service: "open"}}})
	g.instances("multi", "a-1", "a-2,a-3")
	g.instances("open", "", "")
	for range 10 {
		for model, want := range map[string]string{"a-1": "multi-0", "a-2": "multi-1", "a-3": "multi-1"} {
			resp := g.do("POST", "/v1/chat/completions", modelBody(model))
			if got := string(resp.Header.Peek("X-Mock-Instance")); resp.StatusCode() != 200 || got != want {
				t.Fatalf("%s: %d from %q, want 200 from %s", model, resp.StatusCode(), got, want)
			}
		}
	}
	resp := g.do("POST", "/v1/chat/completions", modelBody("a-4"))
	if resp.StatusCode() != 404 || gjson.GetBytes(resp.Body(), "error.code").Str != "model_not_found" {
		t.Errorf("a name no instance lists: %d %s", resp.StatusCode(), resp.Body())
	}
	// Instances that list no model serve any name of the route.
	if resp := g.do("POST", "/v1/chat/completions", modelBody("b-anything")); resp.StatusCode() != 200 {
		t.Errorf("b-anything: %d %s", resp.StatusCode(), resp.Body())
	}
}

// TestPatternRouteACL is the two-tenant case: a key allowed one name that
// a pattern route serves reaches that name alone; a key allowed a pattern
// reaches every name with its prefix, and nothing else.
func TestPatternRouteACL(t *testing.T) {
	g := newGateway(t, Config{
		Routes: []Route{{Model: "qwen-*", Service: "qwen"}, {Model: "qwen-max", Service: "max"}, {Model: "*", Service: "any"}},
		Consumers: []Consumer{
			{Name: "small", KeySHA256: sha256Hex("key-small"), Models: []string{"qwen-small"}},
			{Name: "qwens", KeySHA256: sha256Hex("key-qwens"), Models: []string{"qwen-*"}},
			{Name: "max", KeySHA256: sha256Hex("key-max"), Models: []string{"qwen-max"}},
			{Name: "route", KeySHA256: sha256Hex("key-route"), Models: []string{"*"}},
		},
	})
	g.instances("qwen", "qwen-small,qwen-large")
	g.instances("max", "")
	g.instances("any", "")
	tests := []struct {
		key, model string
		status     int
	}{
		{"key-small", "qwen-small", 200},
		{"key-small", "qwen-large", 403},
		{"key-small", "qwen-max", 403},
		{"key-small", "llama", 403},
		{"key-small", "qwen-*", 403}, // the pattern's own name is the route, not qwen-small
		{"key-qwens", "qwen-large", 200},
		{"key-qwens", "qwen-max", 200}, // a pattern matches names, on any route
		{"key-qwens", "llama", 403},
		{"key-max", "qwen-max", 200},
		{"key-max", "qwen-small", 403},
		{"key-route", "llama", 200},
		{"key-route", "qwen-large", 200},
	}
	for _, tt := range tests {
		resp := g.do("POST", "/v1/chat/completions", modelBody(tt.model), "Authorization", "Bearer "+tt.key)
		if resp.StatusCode() != tt.status {
			t.Errorf("%s asks %s: %d %s, want %d", tt.key, tt.model, resp.StatusCode(), resp.Body(), tt.status)
		}
		if tt.status == 403 && gjson.GetBytes(resp.Body(), "error.code").Str != "model_not_allowed" {
			t.Errorf("%s asks %s: %s", tt.key, tt.model, resp.Body())
		}
	}

	// /v1/models lists the names the pattern route's instances declare
	// (never the pattern), each to the keys that may use it.
	lists := map[string][]string{
		"key-small": {"qwen-small"},
		"key-qwens": {"qwen-large", "qwen-max", "qwen-small"},
		"key-max":   {"qwen-max"},
	}
	for key, want := range lists {
		resp := g.do("GET", "/v1/models", "", "Authorization", "Bearer "+key)
		var got []string
		for _, id := range gjson.GetBytes(resp.Body(), "data.#.id").Array() {
			got = append(got, id.Str)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s lists %v, want %v", key, got, want)
		}
	}
	retrieve := []struct {
		key, id string
		status  int
	}{
		{"key-small", "qwen-small", 200},
		{"key-small", "qwen-large", 404}, // another tenant's name is as unknown as a typo
		{"key-qwens", "qwen-large", 200},
		{"key-qwens", "qwen-unlisted", 404},  // no instance serves it
		{"key-route", "llama-anything", 200}, // the "*" route's instance lists no model: it serves any
	}
	for _, tt := range retrieve {
		resp := g.do("GET", "/v1/models/"+tt.id, "", "Authorization", "Bearer "+tt.key)
		if resp.StatusCode() != tt.status || tt.status == 200 && gjson.GetBytes(resp.Body(), "id").Str != tt.id {
			t.Errorf("%s retrieves %s: %d %s, want %d", tt.key, tt.id, resp.StatusCode(), resp.Body(), tt.status)
		}
	}
}

// TestPatternValidation: a pattern has one "*", at its end; patterns are
// names for duplicates; a pattern route names its service.
func TestPatternValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{"prefix", Config{Routes: []Route{{Model: "qwen-*", Service: "s"}}}, ""},
		{"catch-all", Config{Routes: []Route{{Model: "*", Service: "s"}}}, ""},
		{"star inside", Config{Routes: []Route{{Model: "q*n", Service: "s"}}}, `routes[0].model: "q*n": a pattern has one "*", at its end`},
		{"leading star", Config{Routes: []Route{{Model: "*-7b", Service: "s"}}}, `routes[0].model: "*-7b"`},
		{"two stars", Config{Routes: []Route{{Model: "qwen-**", Service: "s"}}}, `routes[0].model: "qwen-**"`},
		{"duplicate pattern", Config{Routes: []Route{{Model: "qwen-*", Service: "s"}, {Model: "qwen-*", Service: "t"}}}, `routes[1].model: name "qwen-*" already used by routes[0]`},
		{"pattern alias", Config{Routes: []Route{{Model: "a", Aliases: []string{"b", "a-*"}}}}, `routes[0].aliases[1]: "a-*": an alias is a name`},
		{"pattern upstream", Config{Routes: []Route{{Model: "a-*", Service: "s", UpstreamModel: "b-*"}}}, `routes[0].upstream_model: "b-*"`},
		{"pattern without service", Config{Routes: []Route{{Model: "a-*"}}}, `routes[0].service: required for a pattern route`},
		{"fallback to a pattern", Config{Routes: []Route{{Model: "a", Fallback: []string{"*"}}, {Model: "*", Service: "s"}}}, ""},
		{"consumer pattern", Config{Consumers: []Consumer{{Name: "c", KeySHA256: sha256Hex("k"), Models: []string{"a", "b*"}}}}, ""},
		{"bad consumer pattern", Config{Consumers: []Consumer{{Name: "c", KeySHA256: sha256Hex("k"), Models: []string{"a", "b*c"}}}}, `consumers[0].models[1]: "b*c"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestPatternRouteAliasACL: a key allowed an alias of a pattern route
// reaches that alias only, not every name of the pattern; a pattern is
// no model id, to GET /v1/models/{id} either; a pattern route lists only
// names its instances declare in metadata.model, never a service name.
func TestPatternRouteAliasACL(t *testing.T) {
	g := newGateway(t, Config{
		Routes: []Route{{Model: "qwen-*", Service: "qwen", Aliases: []string{"qwen"}}, {Model: "*", Service: "any"}},
		Consumers: []Consumer{
			{Name: "alias", KeySHA256: sha256Hex("key-alias"), Models: []string{"qwen"}},
			{Name: "route", KeySHA256: sha256Hex("key-route"), Models: []string{"qwen-*"}},
			{Name: "all", KeySHA256: sha256Hex("key-all"), Models: []string{"*"}},
		},
	})
	g.instances("qwen", "")
	g.instances("any", "")
	for _, tt := range []struct {
		key, model string
		status     int
	}{
		{"key-alias", "qwen", 200},
		{"key-alias", "qwen-large", 403},
		{"key-alias", "qwen-*", 403},
		{"key-route", "qwen", 200}, // the route's own name grants the route, aliases too
		{"key-route", "qwen-large", 200},
	} {
		for _, path := range []string{"/v1/chat/completions", "/v1/responses"} {
			body := modelBody(tt.model)
			if path == "/v1/responses" {
				body = `{"model":` + strconv.Quote(tt.model) + `,"input":"hi"}`
			}
			resp := g.do("POST", path, body, "Authorization", "Bearer "+tt.key)
			if resp.StatusCode() != tt.status {
				t.Errorf("%s asks %s on %s: %d %s, want %d", tt.key, tt.model, path, resp.StatusCode(), resp.Body(), tt.status)
			}
		}
	}
	for _, tt := range []struct {
		key, id string
		status  int
	}{
		{"key-alias", "qwen", 200},
		{"key-alias", "qwen-large", 404},
		{"key-alias", "qwen-*", 404},
		{"key-route", "qwen-*", 404}, // a pattern is no model
		{"key-all", "*", 404},
		{"key-all", "qwen-*", 404},
		{"key-route", "qwen-large", 200},
	} {
		resp := g.do("GET", "/v1/models/"+tt.id, "", "Authorization", "Bearer "+tt.key)
		if resp.StatusCode() != tt.status {
			t.Errorf("%s retrieves %s: %d %s, want %d", tt.key, tt.id, resp.StatusCode(), resp.Body(), tt.status)
		}
	}
	for key, want := range map[string][]string{"key-alias": {"qwen"}, "key-route": {"qwen"}, "key-all": {"qwen"}} {
		resp := g.do("GET", "/v1/models", "", "Authorization", "Bearer "+key)
		var got []string
		for _, id := range gjson.GetBytes(resp.Body(), "data.#.id").Array() {
			got = append(got, id.Str)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s lists %v, want %v (no service names, no duplicates)", key, got, want)
		}
	}
}

// TestPatternRouteCaseKeys: a key allowed qwen-small cannot reach
// qwen-large through a second "model" key in another case, which an
// engine decoding with Go's encoding/json (the mock does) would read.
func TestPatternRouteCaseKeys(t *testing.T) {
	g := newGateway(t, Config{
		Routes:    []Route{{Model: "qwen-*", Service: "qwen"}},
		Consumers: []Consumer{{Name: "small", KeySHA256: sha256Hex("key-small"), Models: []string{"qwen-small"}}},
	})
	ms := g.mocks("qwen", 1, mockllm.Config{}, nil)
	for _, tt := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"qwen-small","Model":"qwen-large","messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/chat/completions", `{"MODEL":"qwen-large","model":"qwen-small","messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/responses", `{"model":"qwen-small","mOdel":"qwen-large","input":"hi"}`},
		{"/v1/responses", `{"model":"qwen-small","Mo\u0064el":"qwen-large","input":"hi"}`},
	} {
		resp := g.do("POST", tt.path, tt.body, "Authorization", "Bearer key-small")
		if resp.StatusCode() != 400 || gjson.GetBytes(resp.Body(), "error.code").Str != "duplicate_key" {
			t.Errorf("%s %s: %d %s (the instance answered as %q)", tt.path, tt.body, resp.StatusCode(), resp.Body(),
				gjson.GetBytes(resp.Body(), "model").Str)
		}
	}
	if n := ms[0].Requests(); n != 0 {
		t.Errorf("%d ambiguous bodies reached the instance", n)
	}
}

// TestPassthroughCaseModel: on a pass-through path the header names the
// route when the body has no "model"; a body whose model key is written
// in another case ("Model", which Go's encoding/json reads as model) is
// the body's model all the same, so header and body must agree.
func TestPassthroughCaseModel(t *testing.T) {
	g := newGateway(t, Config{
		Passthrough: []string{"/v1/files"},
		Routes:      []Route{{Model: "qwen-*", Service: "qwen"}},
		Consumers:   []Consumer{{Name: "small", KeySHA256: sha256Hex("key-small"), Models: []string{"qwen-small"}}},
	})
	ms := g.mocks("qwen", 1, mockllm.Config{}, nil)
	for _, body := range []string{`{"Model":"qwen-large"}`, `{"MODEL":"qwen-large"}`, `{"mODEL":"qwen-large"}`, `{"M\u006fdel":"qwen-large"}`} {
		resp := g.do("POST", "/v1/files", body, "Authorization", "Bearer key-small", "X-Modelgate-Model", "qwen-small")
		if resp.StatusCode() != 400 || gjson.GetBytes(resp.Body(), "error.code").Str != "model_mismatch" {
			t.Errorf("%s: %d %s", body, resp.StatusCode(), resp.Body())
		}
		resp = g.do("POST", "/v1/files", body, "Authorization", "Bearer key-small")
		if resp.StatusCode() != 403 {
			t.Errorf("%s without the header: %d %s", body, resp.StatusCode(), resp.Body())
		}
	}
	if n := ms[0].Requests(); n != 0 {
		t.Errorf("%d requests for another tenant's model reached the instance", n)
	}
	if resp := g.do("POST", "/v1/files", `{"Model":"qwen-small"}`, "Authorization", "Bearer key-small"); resp.StatusCode() != 200 {
		t.Errorf("the key's own model: %d %s", resp.StatusCode(), resp.Body())
	}
}
