package nacostest

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/testkit"
)

// FreePort returns an HTTP port P for a private Nacos such that P, P+1000
// (SDK gRPC), P+1001 (cluster gRPC) and P-1000 (Raft) are all free now.
func FreePort(t testing.TB) int {
	t.Helper()
	// Raft binds every interface, so each port is checked there too.
	return testkit.FreePortSet(t, 21000, 41000, 1000, 1001, -1000)
}

// AuthOptions are the JVM options that turn Nacos's own auth on for client
// APIs (admin APIs stay open, as the shared server's), with tokens that
// live tokenTTL, and its error messages in replies as its distribution's
// config has them.
func AuthOptions(tokenTTL time.Duration) []string {
	secret := base64.StdEncoding.EncodeToString([]byte("modelgate-test-token-secret-key-0123456789abcdef"))
	return []string{
		"-Dnacos.core.auth.enabled=true",
		"-Dnacos.core.auth.plugin.nacos.token.secret.key=" + secret,
		"-Dnacos.core.auth.server.identity.key=modelgate-test",
		"-Dnacos.core.auth.server.identity.value=modelgate-test",
		"-Dnacos.core.auth.plugin.nacos.token.expire.seconds=" + strconv.Itoa(int(tokenTTL.Seconds())),
		"-Dserver.error.include-message=ALWAYS",
	}
}

// StartPrivateWith starts a private Nacos on a free port with extra JVM
// options and stops it when the test ends.
func StartPrivateWith(t testing.TB, javaOpts ...string) *Server {
	t.Helper()
	s := &Server{Port: FreePort(t), javaOpts: strings.Join(javaOpts, " ")}
	s.Start(t)
	t.Cleanup(func() { _ = script("nacos-down.sh", s.Port, "") })
	return s
}

func scriptCmd(name string, port int, javaOpts string) *exec.Cmd {
	cmd := exec.Command("bash", filepath.Join(repoRoot(), "scripts", name))
	cmd.Env = append(os.Environ(), "NACOS_PORT="+strconv.Itoa(port))
	if javaOpts != "" {
		cmd.Env = append(cmd.Env, "NACOS_JAVA_OPTS="+javaOpts)
	}
	return cmd
}

// call sends a form to Nacos and returns the reply's body, failing the
// test unless the status is 200.
func call(t testing.TB, method, u string, form url.Values) []byte {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s: %s", method, u, resp.Status, body)
	}
	return body
}

// InitAdmin sets the password of Nacos's admin user "nacos" (once, on a
// fresh server with auth on).
func InitAdmin(t testing.TB, addr, password string) {
	t.Helper()
	call(t, http.MethodPost, "http://"+addr+"/nacos/v3/auth/user/admin", url.Values{"password": {password}})
}

// Login returns an access token for user.
func Login(t testing.TB, addr, user, password string) string {
	t.Helper()
	body := call(t, http.MethodPost, "http://"+addr+"/nacos/v3/auth/user/login", url.Values{"username": {user}, "password": {password}})
	var out struct {
		AccessToken string `json:"accessToken"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.AccessToken == "" {
		t.Fatalf("login: %s", body)
	}
	return out.AccessToken
}

// ChangePassword sets user's password, with token of an admin. Nacos
// reloads its users every few seconds: the old password keeps working
// until then, and tokens already issued until they expire.
func ChangePassword(t testing.TB, addr, token, user, password string) {
	t.Helper()
	call(t, http.MethodPut, "http://"+addr+"/nacos/v3/auth/user?accessToken="+url.QueryEscape(token),
		url.Values{"username": {user}, "newPassword": {password}})
}

// RegisterPersistent registers a persistent instance through the admin
// API (Nacos health-checks it over TCP).
func RegisterPersistent(t testing.TB, addr, group, service, host string, port int, meta map[string]string) {
	t.Helper()
	form := url.Values{"serviceName": {service}, "groupName": {group}, "ip": {host}, "port": {strconv.Itoa(port)},
		"ephemeral": {"false"}, "weight": {"1"}, "enabled": {"true"}}
	if meta != nil {
		b, _ := json.Marshal(meta)
		form.Set("metadata", string(b))
	}
	call(t, http.MethodPost, "http://"+addr+"/nacos/v3/admin/ns/instance", form)
}
