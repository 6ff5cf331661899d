package router

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/modelgate/modelgate/discovery"
	"github.com/modelgate/modelgate/internal/mockllm"
)

// privateCA makes a CA and a server certificate for name, signed by it; it
// writes the CA's PEM to a file and returns its path and the server's
// certificate.
func privateCA(t *testing.T, name string) (string, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
}

// tlsModel serves a fixed chat reply over TLS with cert on a loopback socket.
func tlsModel(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ErrorLog: nil, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"choices":[{"index":0,"message":{"role":"assistant","content":"over tls"}}],"usage":{"prompt_tokens":1,"completion_tokens":2}}`))
	})}
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(ln) })
	t.Cleanup(func() { _ = srv.Close(); wg.Wait() })
	return ln.Addr().String()
}

func httpsInstance(addr, credRef string) *discovery.Instance {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	meta := map[string]string{"scheme": "https"}
	if credRef != "" {
		meta["cred_ref"] = credRef
	}
	return &discovery.Instance{Service: "hosted", Host: host, Port: p, Weight: 1, Healthy: true, Enabled: true, Metadata: meta}
}

// TestUpstreamTLSFromYAML: an https instance whose certificate comes from a
// private CA is reached once the CA file and server name are configured in
// YAML for its credential, and refused (502) without them.
func TestUpstreamTLSFromYAML(t *testing.T) {
	caFile, cert := privateCA(t, "model.internal")
	addr := tlsModel(t, cert)
	var cfg Config
	doc := `
routes: [{model: chat, service: hosted, retries: 0}]
credentials:
  lab: {tls: {ca_file: ` + caFile + `, server_name: model.internal}}
`
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	g := newGateway(t, cfg)
	for _, tt := range []struct {
		name, credRef string
		status        int
	}{
		{"private CA configured", "lab", 200},
		{"system roots", "", 502},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g.pool.Update(discovery.ServiceKey("", "hosted"), []*discovery.Instance{httpsInstance(addr, tt.credRef)})
			g.synced()
			r := g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[]}`)
			if r.StatusCode() != tt.status || (tt.status == 200 && !bytes.Contains(r.Body(), []byte("over tls"))) {
				t.Fatalf("status %d: %s", r.StatusCode(), r.Body())
			}
		})
	}
	var bad Config
	if err := yaml.Unmarshal([]byte("credentials:\n  lab: {tls: {ca_file: /nonexistent/ca.pem}}\n"), &bad); err != nil {
		t.Fatal(err)
	}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "credentials.lab.tls") {
		t.Fatalf("a missing CA file: %v", err)
	}
}

// TestInsecureSkipVerifyWarns: skipping verification works only when set,
// and says so in the log when the config is installed.
func TestInsecureSkipVerifyWarns(t *testing.T) {
	_, cert := privateCA(t, "model.internal")
	addr := tlsModel(t, cert)
	var logs bytes.Buffer
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "hosted"}},
		UpstreamTLS: UpstreamTLS{InsecureSkipVerify: true}}, WithLogger(zerolog.New(&logs)))
	g.pool.Update(discovery.ServiceKey("", "hosted"), []*discovery.Instance{httpsInstance(addr, "")})
	g.synced()
	if r := g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[]}`); r.StatusCode() != 200 {
		t.Fatalf("status %d: %s", r.StatusCode(), r.Body())
	}
	if !strings.Contains(logs.String(), "upstream_tls.insecure_skip_verify") || !strings.Contains(logs.String(), `"level":"warn"`) {
		t.Fatalf("no warning logged: %s", logs.String())
	}
}

// TestUnknownCredRef: an instance naming a credential the config does not
// hold is never sent a request (it would go without its secret); it is
// logged once and counted, and the other instance serves.
func TestUnknownCredRef(t *testing.T) {
	var logs bytes.Buffer
	g := newGateway(t, Config{Routes: []Route{{Model: "chat", Service: "qwen"}}}, WithLogger(zerolog.New(&logs)))
	m := g.mocks("qwen", 2, mockllm.Config{}, nil)
	list := []*discovery.Instance{}
	for i, s := range m {
		host, port, _ := net.SplitHostPort(s.Addr())
		p, _ := strconv.Atoi(port)
		meta := map[string]string{}
		if i == 0 {
			meta["cred_ref"] = "nobody"
		}
		list = append(list, &discovery.Instance{Service: "qwen", Host: host, Port: p, Weight: 1, Healthy: true, Enabled: true, Metadata: meta})
	}
	g.pool.Update(discovery.ServiceKey("", "qwen"), list)
	g.synced()
	for range 20 {
		if r := g.do("POST", "/v1/chat/completions", `{"model":"chat","messages":[]}`); r.StatusCode() != 200 ||
			string(r.Header.Peek("X-Mock-Instance")) != "qwen-1" {
			t.Fatalf("status %d from %s", r.StatusCode(), r.Header.Peek("X-Mock-Instance"))
		}
	}
	if n := m[0].Requests(); n != 0 {
		t.Fatalf("the instance with an unknown cred_ref got %d requests", n)
	}
	if v := g.metric(`modelgate_instance_errors_total{kind="unknown_cred_ref"}`); v < 1 {
		t.Fatalf("unknown cred_ref counted %v times", v)
	}
	if n := strings.Count(logs.String(), "names a credential the config does not hold"); n != 1 {
		t.Fatalf("logged %d times, want once: %s", n, logs.String())
	}
}
