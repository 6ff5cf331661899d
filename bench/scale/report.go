package scale

import (
	"fmt"
	"strings"
	"time"
)

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func dur(d time.Duration) string { return d.Round(time.Millisecond).String() }

// PerInstance is the daemon's memory per instance: the difference to the
// daemon watching an empty group, divided by the instances, in bytes (RSS
// and Go heap in use).
func (r *Report) PerInstance() (rss, heap float64) {
	n := float64(r.Instances)
	return float64(r.RSS-r.RSSBase) / n, float64(r.Heap-r.HeapBase) / n
}

// Markdown is the report as BENCHMARKS.md holds it.
func (r *Report) Markdown() string {
	var b strings.Builder
	rssPer, heapPer := r.PerInstance()
	fmt.Fprintf(&b, "Run of %s; %s; load average %s at the start, %s at the end.\n\n", r.Date, r.Machine, r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(&b, "%d ephemeral instances in %d services (%d each), batch-registered by %d SDK clients in %s.\n\n",
		r.Instances, r.Services, r.Instances/max(r.Services, 1), r.Registrars, dur(r.Register))
	b.WriteString("| figure | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| daemon start → `/readyz` 200 | %s |\n", dur(r.Ready))
	fmt.Fprintf(&b, "| daemon start → all %d instances usable in the pool | **%s** |\n", r.Instances, dur(r.FullPool))
	fmt.Fprintf(&b, "| RSS with the full pool (empty group: %s) | **%s** |\n", mib(r.RSSBase), mib(r.RSS))
	fmt.Fprintf(&b, "| Go heap in use with the full pool (empty group: %s) | %s |\n", mib(r.HeapBase), mib(r.Heap))
	fmt.Fprintf(&b, "| memory per instance (difference to the empty group) | %.1f KiB RSS, %.1f KiB heap |\n", rssPer/1024, heapPer/1024)
	fmt.Fprintf(&b, "| idle CPU over %s (empty group: %.4f) | **%.4f cores** |\n", dur(r.IdleWindow), r.IdleCPUBase, r.IdleCPU)
	fmt.Fprintf(&b, "| HTTP calls to Nacos per second, idle (empty group: %.2f) | **%.2f** |\n", r.IdleCallsBase, r.IdleCalls)
	burstRows(&b, r, fmt.Sprintf("burst of %d changes (instances disabled via the admin API)", r.Changes), r.Burst)
	if r.NacosPIDKnown {
		fmt.Fprintf(&b, "| Nacos RSS (JVM, -Xmx512m) with the instances | %s |\n", mib(r.NacosRSS))
		fmt.Fprintf(&b, "| Nacos CPU, idle (one daemon subscribed to every service) | %.4f cores |\n", r.NacosIdleCPU)
		fmt.Fprintf(&b, "| Nacos CPU per instance-list read (%d reads of %d instances, %.0f/s) | %d µs |\n",
			r.Reads, r.Instances/max(r.Services, 1), r.ReadsPerSecond, r.NacosReadCPU.Microseconds())
	}
	if r.Subscribers > 0 {
		burstRows(&b, r, fmt.Sprintf("the same %d enabled again, %d more subscribers reading after each push", r.Changes, r.Subscribers), r.BurstFanout)
		fmt.Fprintf(&b, "| … first change sent → every subscriber's last read done | %s |\n", dur(r.FanoutDone))
		fmt.Fprintf(&b, "| … pushes to those subscribers / their reads | %d / %d (%.2f / %.2f per change per subscriber) |\n",
			r.FanoutPushes, r.FanoutReads, float64(r.FanoutPushes)/float64(max(r.Changes*r.Subscribers, 1)),
			float64(r.FanoutReads)/float64(max(r.Changes*r.Subscribers, 1)))
		if r.NacosPIDKnown {
			extra := r.FanoutNacosCPU - r.Burst.NacosCPUTime
			fmt.Fprintf(&b, "| … Nacos CPU until then / added by the %d subscribers | %.1f s / %.1f s (%.2f ms per push and read) |\n",
				r.Subscribers, r.FanoutNacosCPU.Seconds(), extra.Seconds(), extra.Seconds()*1000/float64(max(r.FanoutPushes, 1)))
		}
	}
	return b.String()
}

func burstRows(b *strings.Builder, r *Report, what string, x BurstResult) {
	fmt.Fprintf(b, "| %s: first sent → last acknowledged | %s |\n", what, dur(x.Send))
	fmt.Fprintf(b, "| … last change acknowledged → every change in the pool | **%s** |\n", dur(x.ConvergeLast))
	fmt.Fprintf(b, "| … first change sent → every change in the pool | %s |\n", dur(x.ConvergeBurst))
	fmt.Fprintf(b, "| … daemon's HTTP reads of Nacos | %d (%.2f per change) |\n", x.Calls, float64(x.Calls)/float64(max(r.Changes, 1)))
	fmt.Fprintf(b, "| … daemon's CPU | %.3f cores |\n", x.CPU)
	if r.NacosPIDKnown {
		fmt.Fprintf(b, "| … Nacos CPU | %.3f cores (%.1f s) |\n", x.NacosCPU, x.NacosCPUTime.Seconds())
	}
}
