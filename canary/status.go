package canary

import (
	"io"
	"maps"
	"slices"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Status is one rollout as GET /admin/canary shows it.
type Status struct {
	Route       string      `json:"route"`
	Origin      string      `json:"origin"`
	Version     string      `json:"version"`
	Baseline    string      `json:"baseline"`
	Steps       []float64   `json:"steps"`
	StepAfter   string      `json:"step_after"`
	MinRequests int         `json:"min_requests"`
	Thresholds  Thresholds  `json:"thresholds"`
	State       State       `json:"state"`
	Step        int         `json:"step"` // 1-based
	Share       float64     `json:"share_percent"`
	StepStarted time.Time   `json:"step_started"`
	Window      WindowView  `json:"window"`
	LastVerdict *Verdict    `json:"last_verdict,omitempty"`
	Reason      string      `json:"reason,omitempty"`
	Verdicts    VerdictView `json:"verdicts"`
	Events      []Event     `json:"events"`
}

// WindowView is the current step's figures of both versions.
type WindowView struct {
	Canary   Figures `json:"canary"`
	Baseline Figures `json:"baseline"`
}

// VerdictView counts a route's verdicts.
type VerdictView struct {
	Pass   uint64 `json:"pass"`
	Breach uint64 `json:"breach"`
}

// Status returns every rollout, by route.
func (c *Controller) Status() []Status {
	c.mu.Lock()
	routes := slices.Sorted(maps.Keys(c.rollouts))
	list := make([]*rollout, len(routes))
	counts := make([][2]uint64, len(routes))
	for i, name := range routes {
		list[i] = c.rollouts[name]
		if v := c.verdicts[name]; v != nil {
			counts[i] = *v
		}
	}
	c.mu.Unlock()
	out := make([]Status, 0, len(list))
	for i, r := range list {
		r.mu.Lock()
		out = append(out, Status{Route: r.route, Origin: r.origin, Version: r.spec.Version, Baseline: r.spec.Baseline,
			Steps: r.spec.Steps, StepAfter: r.spec.StepAfter.String(), MinRequests: r.spec.MinRequests,
			Thresholds: r.spec.Thresholds, State: r.state, Step: r.step + 1, Share: r.share(), StepStarted: r.since,
			Window: WindowView{Canary: r.canary.figures(), Baseline: r.base.figures()}, LastVerdict: r.last,
			Reason: r.reason, Verdicts: VerdictView{Pass: counts[i][0], Breach: counts[i][1]},
			Events: slices.Clone(r.events)})
		r.mu.Unlock()
	}
	return out
}

// WritePrometheus writes modelgate_canary_step (the 1-based step, 0 once
// aborted), modelgate_canary_share_percent and
// modelgate_canary_verdicts_total{result="pass|breach"} per route.
func (c *Controller) WritePrometheus(w io.Writer) {
	for _, s := range c.Status() {
		l := `{model="` + s.Route + `"}`
		step := s.Step
		if s.State == Aborted {
			step = 0
		}
		metrics.WriteGaugeUint64(w, "modelgate_canary_step"+l, uint64(step))
		metrics.WriteGaugeFloat64(w, "modelgate_canary_share_percent"+l, s.Share)
		for _, v := range []struct {
			result string
			n      uint64
		}{{Pass, s.Verdicts.Pass}, {Breach, s.Verdicts.Breach}} {
			metrics.WriteCounterUint64(w, `modelgate_canary_verdicts_total{model="`+s.Route+`",result="`+v.result+`"}`, v.n)
		}
	}
}
