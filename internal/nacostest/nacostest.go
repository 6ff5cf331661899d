// Package nacostest gives integration tests a real Nacos server on loopback
// and registers model instances in it the way model servers do.
//
// The shared server is the one `make test` starts (MODELGATE_NACOS_ADDR);
// when that is unset, Addr starts it with scripts/nacos-up.sh and leaves it
// running for the next test run (`make nacos-down` stops it). Tests that
// stop and restart Nacos use a private server from StartPrivate, so the
// other packages' tests are not disturbed.
package nacostest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"
)

// DefaultPort is the HTTP port of the shared test server.
const DefaultPort = 18848

var (
	startOnce sync.Once
	startErr  error
)

// Addr returns "127.0.0.1:PORT" of the shared test server, starting it if
// needed. It fails the test if no server can be had.
func Addr(t testing.TB) string {
	t.Helper()
	if addr := os.Getenv("MODELGATE_NACOS_ADDR"); addr != "" {
		return addr
	}
	startOnce.Do(func() { startErr = script("nacos-up.sh", DefaultPort, "") })
	if startErr != nil {
		t.Fatalf("no Nacos for the integration tests: %v", startErr)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(DefaultPort))
}

// Server is a private Nacos server that a test may stop and start.
type Server struct {
	Port     int
	javaOpts string   // extra JVM options, space-separated
	env      []string // extra environment of the start script
}

// StartPrivate starts a Nacos server of the test's own on port and stops it
// when the test ends.
func StartPrivate(t testing.TB, port int) *Server {
	t.Helper()
	s := &Server{Port: port}
	s.Start(t)
	t.Cleanup(func() { _ = script("nacos-down.sh", port, "") })
	return s
}

// Addr is "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Start starts the server and waits until it is ready.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	// Under heavy load the embedded Derby can fail a start with "Login
	// timeout exceeded"; another attempt starts.
	var err error
	for range 3 {
		if err = script("nacos-up.sh", s.Port, s.javaOpts, s.env...); err == nil {
			return
		}
	}
	t.Fatalf("start Nacos on %d: %v", s.Port, err)
}

// Stop stops the server.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := script("nacos-down.sh", s.Port, ""); err != nil {
		t.Fatalf("stop Nacos on %d: %v", s.Port, err)
	}
}

func script(name string, port int, javaOpts string, env ...string) error {
	cmd := scriptCmd(name, port, javaOpts)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, out)
	}
	return nil
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// NamingClient returns a new naming client on addr with its files in a
// temporary directory, closed when the test ends.
func NamingClient(t testing.TB, addr string) naming_client.INamingClient {
	t.Helper()
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.ParseUint(portStr, 10, 16)
	dir, err := os.MkdirTemp("", "modelgate-nacos-client-")
	if err != nil {
		t.Fatal(err)
	}
	cc := constant.NewClientConfig(
		constant.WithTimeoutMs(5000),
		constant.WithNotLoadCacheAtStart(true),
		constant.WithCacheDir(filepath.Join(dir, "cache")),
		constant.WithLogDir(filepath.Join(dir, "log")),
		constant.WithLogLevel("warn"),
	)
	c, err := clients.NewNamingClient(vo.NacosClientParam{
		ClientConfig:  cc,
		ServerConfigs: []constant.ServerConfig{*constant.NewServerConfig(host, port)},
	})
	if err != nil {
		t.Fatalf("nacos naming client: %v", err)
	}
	t.Cleanup(func() {
		c.CloseClient()
		_ = os.RemoveAll(dir)
	})
	return c
}

// Instance is one registered instance. Each has its own naming client, as
// each model server would: Nacos keeps one ephemeral instance per service
// and client connection.
type Instance struct {
	t      testing.TB
	addr   string
	client naming_client.INamingClient
	param  vo.RegisterInstanceParam
}

// Register registers host:port as an instance of group@@service.
func Register(t testing.TB, addr, group, service, host string, port int, weight float64, meta map[string]string) *Instance {
	t.Helper()
	in := &Instance{t: t, addr: addr, client: NamingClient(t, addr), param: vo.RegisterInstanceParam{
		Ip: host, Port: uint64(port), Weight: weight, Enable: true, Healthy: true, Ephemeral: true,
		Metadata: meta, ServiceName: service, GroupName: group,
	}}
	in.register()
	return in
}

func (in *Instance) register() {
	in.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, err := in.client.RegisterInstance(in.param)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("register %s@@%s %s:%d: ok=%v err=%v", in.param.GroupName, in.param.ServiceName, in.param.Ip, in.param.Port, ok, err)
		}
		time.Sleep(200 * time.Millisecond) // the client may still be connecting: retry
	}
}

// Update sets the instance's weight and enabled flag the way an operator
// does, through the Nacos admin API.
func (in *Instance) Update(weight float64, enabled bool) {
	in.t.Helper()
	in.param.Weight, in.param.Enable = weight, enabled
	form := url.Values{
		"serviceName": {in.param.ServiceName}, "groupName": {in.param.GroupName},
		"ip": {in.param.Ip}, "port": {strconv.FormatUint(in.param.Port, 10)}, "ephemeral": {"true"},
		"weight": {strconv.FormatFloat(weight, 'f', -1, 64)}, "enabled": {strconv.FormatBool(enabled)},
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+in.addr+"/nacos/v3/admin/ns/instance", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		in.t.Fatalf("update instance: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		in.t.Fatalf("update instance: %s: %s", resp.Status, body)
	}
}

// Deregister removes the instance.
func (in *Instance) Deregister() {
	in.t.Helper()
	ok, err := in.client.DeregisterInstance(vo.DeregisterInstanceParam{
		Ip: in.param.Ip, Port: in.param.Port, ServiceName: in.param.ServiceName,
		GroupName: in.param.GroupName, Ephemeral: true,
	})
	if err != nil || !ok {
		in.t.Fatalf("deregister: ok=%v err=%v", ok, err)
	}
}

// Reregister registers the instance again after Deregister.
func (in *Instance) Reregister() { in.register() }
