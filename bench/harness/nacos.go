package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
