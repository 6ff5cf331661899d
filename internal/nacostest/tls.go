package nacostest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TLSFiles are PEM files for a Nacos serving TLS: a CA, a server
// certificate it signed for 127.0.0.1 and localhost with its key (PKCS#8,
// as Netty reads it), and a second CA that signed nothing of the server's.
type TLSFiles struct {
	CA, Cert, Key string
	OtherCA       string
}

// NewTLSFiles writes fresh TLSFiles into a temporary directory.
func NewTLSFiles(t testing.TB) TLSFiles {
	t.Helper()
	dir := t.TempDir()
	f := TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "server.pem"),
		Key: filepath.Join(dir, "server-key.pem"), OtherCA: filepath.Join(dir, "other-ca.pem")}
	caCert, caKey := newCA(t, "modelgate test CA")
	writePEM(t, f.CA, "CERTIFICATE", caCert.Raw)
	other, _ := newCA(t, "modelgate unrelated CA")
	writePEM(t, f.OtherCA, "CERTIFICATE", other.Raw)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, f.Cert, "CERTIFICATE", der)
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, f.Key, "PRIVATE KEY", pk)
	return f
}

func newCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TLSOptions are the JVM options that make Nacos serve TLS only, with f's
// server certificate: its HTTP API (Spring Boot's server.ssl, PEM files)
// and its SDK gRPC port (nacos.remote.server.rpc.tls.*, with
// compatibility off, so plaintext clients are refused).
func TLSOptions(f TLSFiles) []string {
	return []string{
		"-Dserver.ssl.enabled=true",
		"-Dserver.ssl.certificate=file:" + f.Cert,
		"-Dserver.ssl.certificate-private-key=file:" + f.Key,
		"-Dnacos.remote.server.rpc.tls.enableTls=true",
		"-Dnacos.remote.server.rpc.tls.compatibility=false",
		// Nacos resolves these as resources: without "file:" it looks
		// on the classpath.
		"-Dnacos.remote.server.rpc.tls.certChainFile=file:" + f.Cert,
		"-Dnacos.remote.server.rpc.tls.certPrivateKey=file:" + f.Key,
	}
}

// StartPrivateTLS starts a private Nacos serving TLS only (TLSOptions) on
// a free port and stops it when the test ends.
func StartPrivateTLS(t testing.TB, f TLSFiles, javaOpts ...string) *Server {
	t.Helper()
	s := &Server{Port: FreePort(t), javaOpts: strings.Join(append(TLSOptions(f), javaOpts...), " "),
		env: []string{"NACOS_TLS_CA=" + f.CA}}
	s.Start(t)
	t.Cleanup(func() { _ = script("nacos-down.sh", s.Port, "") })
	return s
}
