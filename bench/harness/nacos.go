package harness

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// NacosUp starts a real Nacos on 127.0.0.1:port with scripts/nacos-up.sh (a
// no-op if one from that script already runs there) and waits until it is
// ready. It reports how long that took.
func NacosUp(port int) (time.Duration, error) {
	return nacosScript("nacos-up.sh", port)
}

// NacosDown stops the Nacos on port started by NacosUp.
func NacosDown(port int) (time.Duration, error) {
	return nacosScript("nacos-down.sh", port)
}

func nacosScript(name string, port int) (time.Duration, error) {
	start := time.Now()
	cmd := exec.Command("bash", filepath.Join(Root(), "scripts", name))
	cmd.Env = append(os.Environ(), "NACOS_PORT="+strconv.Itoa(port))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return time.Since(start), fmt.Errorf("%s (port %d): %w\n%s", name, port, err, out)
	}
	return time.Since(start), nil
}

// FreeNacosPort returns an HTTP port P for a private Nacos such that P,
// P+1000 (SDK gRPC), P+1001 (cluster gRPC) and P-1000 (Raft) are all free
// now, on every interface.
func FreeNacosPort() (int, error) {
	for range 200 {
		p := 21000 + rand.IntN(20000)
		ok := true
		for _, q := range []int{p, p + 1000, p + 1001, p - 1000} {
			ln, err := net.Listen("tcp", ":"+strconv.Itoa(q))
			if err != nil {
				ok = false
				break
			}
			_ = ln.Close()
		}
		if ok {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port set for a Nacos")
}

// NacosPID returns the process id of the Nacos that NacosUp started on port.
func NacosPID(port int) (int, error) {
	b, err := os.ReadFile(filepath.Join(Root(), ".cache", "nacos", "run-"+strconv.Itoa(port), "nacos.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
