package main

import (
	"strings"
	"testing"
)

func TestExampleConfigIsValid(t *testing.T) {
	t.Setenv("NACOS_PASSWORD", "secret")
	c, err := loadConfig("../../examples/modelgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Discovery.Nacos.Password != "secret" {
		t.Errorf("${NACOS_PASSWORD} not expanded: %q", c.Discovery.Nacos.Password)
	}
	if r := c.Router.Routes[0]; r.ServiceKey() != "LLM@@qwen-7b" || r.Retries != 1 {
		t.Errorf("route: %+v", r)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"no discovery", "routes: []\n", "discovery"},
		{"both sources", "discovery: {static: a.yaml, nacos: {servers: [x:1]}}\n", "not both"},
		{"unknown field", "discovery: {static: a.yaml}\nlisten_addr: x\n", "listen_addr"},
		{"no servers", "discovery: {nacos: {groups: [A]}}\n", "servers"},
		{"bad policy", "discovery: {nacos: {servers: [x:1], empty_policy: drop}}\n", "empty_policy"},
		{"route without model", "discovery: {static: a.yaml}\nroutes: [{service: x}]\n", "routes[0].model"},
		{"duplicate name", "discovery: {static: a.yaml}\nroutes: [{model: a}, {model: b, aliases: [a]}]\n", "already used"},
		{"bad retries", "discovery: {static: a.yaml}\nroutes: [{model: a, retries: -1}]\n", "retries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
