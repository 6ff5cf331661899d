package router

import (
	"bytes"
	"io"
	"strings"
)

// metricMeta is the # HELP text and # TYPE of one metric family.
type metricMeta struct {
	typ  string // counter, gauge, histogram or summary
	help string
}

// metricHelp describes every family modelgate exposes, its own and those of
// the packages whose series share the set (discovery/nacos, degrade, the
// daemon). Add a line here with each new metric: the promtool test
// (cmd/modelgate) fails on a modelgate_ family without one.
var metricHelp = map[string]metricMeta{
	"modelgate_requests_total":                {"counter", "Requests answered, by route model, HTTP status code and type (normal or stream)."},
	"modelgate_request_duration_seconds":      {"histogram", "Time from receiving a request to the end of its reply, by route model."},
	"modelgate_ttft_seconds":                  {"histogram", "Time to the first token (first byte of the reply body), by route model."},
	"modelgate_tokens_total":                  {"counter", "Tokens by route model, type (input or output) and source (usage from the reply, or estimated)."},
	"modelgate_access_log_dropped_total":      {"counter", "Access log lines dropped because the log's buffer was full (the output was slower than the requests)."},
	"modelgate_cache_hits_total":              {"counter", "Replies served from the degrade reply cache, by route model and kind (fresh or stale)."},
	"modelgate_queue_wait_seconds":            {"histogram", "Time requests waited in the degrade admission queue, by route model."},
	"modelgate_consumer_requests_total":       {"counter", "Requests by authenticated consumer."},
	"modelgate_consumer_tokens_total":         {"counter", "Tokens by authenticated consumer and type (input or output)."},
	"modelgate_upstream_requests_total":       {"counter", "Attempts sent to an upstream instance, by service, upstream address, version and status code (0: no reply)."},
	"modelgate_pool_instances":                {"gauge", "Instances in the pool, by service and state (usable or unusable)."},
	"modelgate_pool_version":                  {"gauge", "Version of the pool snapshot; it grows with each change of the pool."},
	"modelgate_breaker_open":                  {"gauge", "1 while the circuit breaker of an upstream instance is open, else 0."},
	"modelgate_instance_in_flight":            {"gauge", "Requests picked for an upstream instance and not yet finished."},
	"modelgate_panic_picks_total":             {"counter", "Picks made while every matching instance's breaker was open, by route model."},
	"modelgate_degrade_tier":                  {"gauge", "Current degrade tier of a route (0 normal ... 3 cache only)."},
	"modelgate_nacos_updates_total":           {"counter", "Pool updates from Nacos, by source (push or reconcile)."},
	"modelgate_nacos_sync_age_seconds":        {"gauge", "Seconds since the last successful sync with Nacos."},
	"modelgate_nacos_held_services":           {"gauge", "Services whose last good instance list is held because Nacos returned an empty one."},
	"modelgate_nacos_errors_total":            {"counter", "Failed calls to Nacos, by kind (auth or connection)."},
	"modelgate_nacos_http_requests_total":     {"counter", "Calls made to Nacos's HTTP API."},
	"modelgate_pool_stale":                    {"gauge", "1 while the pool is an unconfirmed snapshot read from disk, else 0."},
	"modelgate_config_reload_errors_total":    {"counter", "Config reloads rejected (the previous config stays in force)."},
	"modelgate_engine_metrics_fresh":          {"gauge", "1 while the engine's own queue counts for an instance (last scrape good), 0 while its in-flight count does."},
	"modelgate_engine_requests_waiting":       {"gauge", "Requests queued in the instance's engine, from its metrics endpoint (last good scrape)."},
	"modelgate_engine_requests_running":       {"gauge", "Requests the instance's engine is processing, from its metrics endpoint (last good scrape)."},
	"modelgate_engine_kv_cache_usage_ratio":   {"gauge", "KV-cache usage of the instance's engine, 0 to 1 (last good scrape)."},
	"modelgate_engine_prefix_cache_hit_ratio": {"gauge", "Prompt tokens served from the engine's prefix cache over those looked up, since the engine started."},
	"modelgate_engine_scrapes_total":          {"counter", "Scrapes of an instance's engine metrics endpoint, by result (ok, down, timeout, status, garbage)."},
	"modelgate_upstream_reconnects_total":     {"counter", "Requests sent again on a fresh connection because the upstream had closed the pooled one (not failures)."},
	"modelgate_canary_step":                   {"gauge", "Current step of a route's canary rollout (1-based; 0 once aborted)."},
	"modelgate_canary_share_percent":          {"gauge", "Share of a route's traffic sent to the canary version, in percent."},
	"modelgate_canary_verdicts_total":         {"counter", "Canary step verdicts by route and result (pass or breach)."},
	"modelgate_instance_healthy":              {"gauge", "1 while an actively probed upstream instance passes its health checks, 0 while it is out of rotation."},
	"modelgate_instance_errors_total":         {"counter", "Instances passed over for a metadata error, by kind (unknown_cred_ref: names a credential the config does not hold)."},
	"modelgate_health_probes_total":           {"counter", "Active health probes sent to upstream instances."},
	"modelgate_health_probe_failures_total":   {"counter", "Active health probes that failed (no 2xx answer within the timeout)."},
}

// runtimeHelp describes the Go runtime and process families that
// VictoriaMetrics/metrics writes, by prefix; a family of neither table gets
// a generic text from its prefix.
var runtimeHelp = map[string]string{
	"go_":      "Go runtime metric (runtime/metrics, VictoriaMetrics/metrics).",
	"process_": "Process metric from /proc (VictoriaMetrics/metrics).",
}

// runtimeRenames renames the VictoriaMetrics runtime series whose names
// break the Prometheus naming rules (a _count suffix outside histograms and
// summaries), so that the whole exposition passes promtool's lint.
var runtimeRenames = map[string]string{
	"go_cgo_calls_count": "go_cgo_calls_total",
	"go_gc_forced_count": "go_gc_forced_total",
	"go_cpu_count":       "go_cpus",
}

// writeAnnotated copies the Prometheus text in src to w, adding # HELP and
// # TYPE before the first series of each family. Types not declared in
// metricHelp are inferred: histogram from _bucket series, summary from
// quantile labels, counter from a _total suffix, else gauge. Families that
// are neither declared nor runtime metrics (a library user's own) are
// copied without metadata; runtimeRenames are applied. Lines already starting with # are dropped, so
// that a family is never described twice.
func writeAnnotated(w io.Writer, src []byte) error {
	var out bytes.Buffer
	out.Grow(len(src) + len(src)/4)
	last, lastTyp := "", ""
	seen := map[string]bool{}
	for len(src) > 0 {
		line := src
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			line, src = src[:i+1], src[i+1:]
		} else {
			src = nil
		}
		if len(bytes.TrimSpace(line)) == 0 || line[0] == '#' {
			continue
		}
		name := seriesName(line)
		if to, ok := runtimeRenames[name]; ok {
			line = append([]byte(to), line[len(name):]...)
			name = to
		}
		if !partOf(name, last, lastTyp) {
			fam, typ := family(name, line)
			last, lastTyp = fam, typ
			if !seen[fam] {
				seen[fam] = true
				writeMeta(&out, fam, typ)
			}
		}
		out.Write(line)
		if line[len(line)-1] != '\n' {
			out.WriteByte('\n')
		}
	}
	_, err := w.Write(out.Bytes())
	return err
}

func seriesName(line []byte) string {
	for i, c := range line {
		if c == '{' || c == ' ' {
			return string(line[:i])
		}
	}
	return strings.TrimSpace(string(line))
}

// partOf tells whether series name belongs to the histogram or summary
// family fam.
func partOf(name, fam, typ string) bool {
	if fam == "" || (typ != "histogram" && typ != "summary") {
		return name == fam && fam != ""
	}
	rest, ok := strings.CutPrefix(name, fam)
	return ok && (rest == "" || rest == "_bucket" || rest == "_sum" || rest == "_count")
}

// family returns the family of a series name and its inferred type.
func family(name string, line []byte) (string, string) {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suf)
		if !ok {
			continue
		}
		if m, ok := metricHelp[base]; ok && (m.typ == "histogram" || m.typ == "summary") {
			return base, m.typ
		}
		if suf == "_bucket" {
			return base, "histogram"
		}
	}
	if m, ok := metricHelp[name]; ok {
		return name, m.typ
	}
	switch {
	case bytes.Contains(line, []byte(`quantile="`)):
		return name, "summary"
	case strings.HasSuffix(name, "_total"):
		return name, "counter"
	}
	return name, "gauge"
}

func writeMeta(out *bytes.Buffer, fam, typ string) {
	help := metricHelp[fam].help
	if help == "" {
		for prefix, h := range runtimeHelp {
			if strings.HasPrefix(fam, prefix) {
				help = h
			}
		}
	}
	if help == "" {
		return
	}
	out.WriteString("# HELP " + fam + " " + help + "\n# TYPE " + fam + " " + typ + "\n")
}
