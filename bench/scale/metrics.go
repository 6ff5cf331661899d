package scale

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/modelgate/modelgate/bench/harness"
)

// metricsView is what the run reads from a daemon's /metrics.
type metricsView struct {
	usable, unusable int     // instances of the group's services in the pool
	calls            float64 // modelgate_nacos_http_requests_total
	heap             int64   // go_memstats_heap_inuse_bytes
}

// readMetrics reads the daemon's /metrics; group "" counts no instances.
func readMetrics(admin, group string) (metricsView, error) {
	var m metricsView
	body, err := harness.Get("http://" + admin + "/metrics")
	if err != nil {
		return m, err
	}
	return parseMetrics(body, group)
}

func parseMetrics(body []byte, group string) (metricsView, error) {
	var m metricsView
	prefix := `modelgate_pool_instances{service="` + group + `@@`
	seenCalls := false
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		name, val := line[:sp], line[sp+1:]
		switch {
		case group != "" && strings.HasPrefix(name, prefix):
			n, err := strconv.Atoi(val)
			if err != nil {
				return m, fmt.Errorf("scale: metric %q: %w", line, err)
			}
			if strings.HasSuffix(name, `state="usable"}`) {
				m.usable += n
			} else {
				m.unusable += n
			}
		case name == "modelgate_nacos_http_requests_total":
			f, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return m, fmt.Errorf("scale: metric %q: %w", line, err)
			}
			m.calls, seenCalls = f, true
		case name == "go_memstats_heap_inuse_bytes":
			f, _ := strconv.ParseFloat(val, 64)
			m.heap = int64(f)
		}
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if !seenCalls {
		return m, fmt.Errorf("scale: no modelgate_nacos_http_requests_total in /metrics")
	}
	return m, nil
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
