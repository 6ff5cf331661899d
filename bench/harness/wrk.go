package harness

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EnsureWrk installs wrk from Debian's packages when it is missing
// (bench/wrk.sh), as CI starts from a fresh machine.
func EnsureWrk() error {
	if _, err := exec.LookPath("wrk"); err == nil {
		return nil
	}
	out, err := exec.Command("bash", filepath.Join(Root(), "bench", "wrk.sh")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("install wrk: %w\n%s", err, out)
	}
	return nil
}

// WrkResult is what one wrk run reports.
type WrkResult struct {
	Requests int64
	Duration time.Duration
	RPS      float64
	P50, P99 time.Duration
	Errors   int64 // socket errors plus non-2xx replies
	Raw      string
}

// Wrk runs wrk with one thread and conns connections for d (whole seconds,
// at least one) against url,
// POSTing body as JSON, pinned to cpu (when not empty).
func Wrk(cpu, url, body string, conns int, d time.Duration) (WrkResult, error) {
	script, err := os.CreateTemp("", "modelgate-wrk-*.lua")
	if err != nil {
		return WrkResult{}, err
	}
	defer os.Remove(script.Name())
	fmt.Fprintf(script, "wrk.method = \"POST\"\nwrk.body = %q\nwrk.headers[\"Content-Type\"] = \"application/json\"\n", body)
	script.Close()
	args := []string{"wrk", "-t1", "-c" + strconv.Itoa(conns), "-d" + fmt.Sprintf("%ds", max(1, int(d.Round(time.Second).Seconds()))),
		"--latency", "--timeout", "10s", "-s", script.Name(), url}
	if cpu != "" {
		args = append([]string{"taskset", "-c", cpu}, args...)
	}
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return WrkResult{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	return parseWrk(string(out))
}

var (
	wrkTotal   = regexp.MustCompile(`(\d+) requests in ([\d.]+\w+)`)
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	wrkSocket  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	unitFactor = map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9}
)

func parseWrk(out string) (WrkResult, error) {
	r := WrkResult{Raw: out}
	m := wrkTotal.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk output without a total: %s", out)
	}
	r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	r.Duration, _ = time.ParseDuration(m[2])
	if m := wrkRPS.FindStringSubmatch(out); m != nil {
		r.RPS, _ = strconv.ParseFloat(m[1], 64)
	}
	for _, m := range wrkPct.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		d := time.Duration(v * unitFactor[m[3]])
		if m[1] == "50" {
			r.P50 = d
		} else {
			r.P99 = d
		}
	}
	if m := wrkSocket.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseInt(s, 10, 64)
			r.Errors += n
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		r.Errors += n
	}
	if r.P50 == 0 || r.P99 == 0 {
		return r, fmt.Errorf("wrk output without latency percentiles: %s", out)
	}
	return r, nil
}

// Percentile returns the p-th percentile (0..100) of xs, nearest rank; xs
// need not be sorted. It returns 0 for no data.
func Percentile(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Median returns the median of xs (the mean of the middle two for an even
// count), or NaN for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Ms formats a duration in milliseconds with 3 decimals.
func Ms(d float64) string { return strconv.FormatFloat(d, 'f', 3, 64) + " ms" }

// Join joins per-round values for a table cell.
func Join(xs []float64, format func(float64) string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = format(x)
	}
	return strings.Join(parts, ", ")
}
