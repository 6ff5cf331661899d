package nacos

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The HTTP API over TLS trusts exactly the CA file's certificates.
func TestHTTPAPIOverTLSWithCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"count":1,"doms":["qwen"]}`))
	}))
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(srv.URL, "https://")
	api, err := newHTTPAPI(ClientConfig{Servers: []string{addr}, TimeoutMs: 5000, TLS: &TLSConfig{CAFile: ca, ServerName: "example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	defer api.client.CloseIdleConnections()
	if names, _, err := api.services("LLM", 1, 10); err != nil || len(names) != 1 {
		t.Fatalf("over TLS with the CA file: %v %v", names, err)
	}

	// The system roots do not know the test server: the handshake fails.
	plain, err := newHTTPAPI(ClientConfig{Servers: []string{addr}, TimeoutMs: 5000, TLS: &TLSConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.client.CloseIdleConnections()
	if _, _, err := plain.services("LLM", 1, 10); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("want a certificate error without the CA file, got %v", err)
	}

	bad := filepath.Join(dir, "bad.pem")
	_ = os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := newHTTPAPI(ClientConfig{Servers: []string{addr}, TLS: &TLSConfig{CAFile: bad}}); err == nil {
		t.Fatal("want an error for a CA file without certificates")
	}
}

// Replicas configured with the same servers do not all read from the
// first one: each HTTP client starts at a random server.
func TestHTTPAPIStartsAtARandomServer(t *testing.T) {
	seen := map[int]bool{}
	for range 64 {
		api, err := newHTTPAPI(ClientConfig{Servers: []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}, TimeoutMs: 100})
		if err != nil {
			t.Fatal(err)
		}
		seen[api.next] = true
	}
	if len(seen) != 3 {
		t.Fatalf("64 clients started at servers %v, want all three", seen)
	}
}
