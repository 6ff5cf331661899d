package router

import (
	"testing"

	"github.com/tidwall/gjson"

	"github.com/modelgate/modelgate/internal/mockllm"
)

// TestModelByID: GET /v1/models/{id} answers the model object of
// /v1/models, per key: another tenant's model is as unknown as a typo.
func TestModelByID(t *testing.T) {
	g := newGateway(t, Config{
		Routes: []Route{{Model: "cheap", Aliases: []string{"org/cheap-alias"}}, {Model: "premium"}, {Model: "idle"}},
		Consumers: []Consumer{{Name: "a", KeySHA256: sha256Hex("key-a"), Models: []string{"cheap", "org/cheap-alias"}},
			{Name: "b", KeySHA256: sha256Hex("key-b")}},
	})
	g.mocks("cheap", 1, mockllm.Config{}, nil)
	g.mocks("premium", 1, mockllm.Config{}, nil)
	tests := []struct {
		method, path, key string
		status            int
		id, code          string
	}{
		{"GET", "/v1/models/cheap", "Bearer key-a", 200, "cheap", ""},
		{"GET", "/v1/models/org/cheap-alias", "Bearer key-a", 200, "org/cheap-alias", ""},
		{"GET", "/v1/models/premium", "Bearer key-a", 404, "", "model_not_found"},
		{"GET", "/v1/models/premium", "Bearer key-b", 200, "premium", ""},
		{"GET", "/v1/models/idle", "Bearer key-b", 404, "", "model_not_found"}, // no usable instance: not listed either
		{"GET", "/v1/models/nope", "Bearer key-b", 404, "", "model_not_found"},
		{"GET", "/v1/models/cheap", "", 401, "", "invalid_api_key"},
		{"GET", "/v1/models/cheap", "Bearer wrong", 401, "", "invalid_api_key"},
		{"POST", "/v1/models/cheap", "Bearer key-a", 405, "", "method_not_allowed"},
	}
	for _, tt := range tests {
		resp := g.do(tt.method, tt.path, "", "Authorization", tt.key)
		body := resp.Body()
		if resp.StatusCode() != tt.status {
			t.Errorf("%s %s (%s): %d %s, want %d", tt.method, tt.path, tt.key, resp.StatusCode(), body, tt.status)
			continue
		}
		if tt.id != "" && (gjson.GetBytes(body, "id").Str != tt.id || gjson.GetBytes(body, "object").Str != "model") {
			t.Errorf("%s: %s", tt.path, body)
		}
		if tt.code != "" && gjson.GetBytes(body, "error.code").Str != tt.code {
			t.Errorf("%s %s: %s, want code %s", tt.method, tt.path, body, tt.code)
		}
	}
}
