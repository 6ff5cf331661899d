package router

import (
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// The plot's geometry, in SVG user units (pixels at 100 %).
const (
	plotLabelW = 62  // the strip's name, left
	plotW      = 210 // the curve
	plotValueW = 74  // the latest value and the scale, right
	plotStripH = 26
	plotGap    = 5
)

// strip is one curve of a route's plot.
type strip struct {
	name, color string
	// value is the strip's figure at a point; ok false leaves a gap.
	value func(p point) (v float64, ok bool)
	floor float64 // the least top of the scale
	fixed bool    // the scale is 0..floor whatever the values
	unit  func(v float64) string
	// ref, if set, is drawn dashed: the configured value at a point.
	ref func(p point) (v float64, ok bool)
}

var plotStrips = []strip{
	{name: "requests/s", color: "#1a5fb4", floor: 1,
		value: func(p point) (float64, bool) { return float64(p.requests) / p.secs, p.secs > 0 },
		unit:  func(v float64) string { return formatFloat(v, 1) + "/s" }},
	{name: "errors", color: "#b3261e", floor: 1,
		value: func(p point) (float64, bool) { return 100 * float64(p.errors) / float64(p.requests), p.requests > 0 },
		unit:  func(v float64) string { return formatFloat(v, 1) + " %" }},
	{name: "TTFT p95", color: "#7b2cbf", floor: 1,
		value: func(p point) (float64, bool) { return float64(p.ttftP95) / float64(time.Millisecond), p.ttftP95 > 0 },
		unit:  func(v float64) string { return formatFloat(v, 0) + " ms" }},
	{name: "canary", color: "#0b7a5f", floor: 100, fixed: true, // 0 to 100 %
		value: func(p point) (float64, bool) { return p.canaryActual, p.canaryActual >= 0 },
		ref:   func(p point) (float64, bool) { return p.canaryShare, p.canary != "" },
		unit:  func(v float64) string { return formatFloat(v, 1) + " %" }},
}

// plotSVG draws a route's last span of points as four strips: requests per
// second, error rate, TTFT p95 and the canary's actual share (its
// configured share dashed). Time runs left to right, now at the right
// edge; a missing sample leaves a gap. The SVG holds numbers and fixed
// words only, so it is safe to emit unescaped.
func plotSVG(pts []point, now time.Time, span, every time.Duration) template.HTML {
	width := plotLabelW + plotW + plotValueW
	height := len(plotStrips)*(plotStripH+plotGap) + 12
	var b strings.Builder
	b.WriteString(`<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="` + strconv.Itoa(width) + `" height="` +
		strconv.Itoa(height) + `" viewBox="0 0 ` + strconv.Itoa(width) + ` ` + strconv.Itoa(height) +
		`" role="img" data-points="` + strconv.Itoa(len(pts)) + `">`)
	b.WriteString(`<title>last ` + span.String() + `, one point every ` + every.String() + `</title>`)
	x := func(at time.Time) float64 {
		return plotLabelW + plotW*(1-now.Sub(at).Seconds()/span.Seconds())
	}
	for i, s := range plotStrips {
		top := float64(i * (plotStripH + plotGap))
		b.WriteString(`<g class="strip" data-strip="` + s.name + `">`)
		b.WriteString(`<text x="0" y="` + num(top+plotStripH/2+4) + `" font-size="11" fill="#5b6678">` + s.name + `</text>`)
		b.WriteString(`<rect x="` + num(plotLabelW) + `" y="` + num(top) + `" width="` + num(plotW) + `" height="` +
			num(plotStripH) + `" fill="#f5f7fa" stroke="#e3e7ee"/>`)
		hi := s.floor
		last, lastOK := 0.0, false
		if !s.fixed {
			for _, p := range pts {
				if v, ok := s.value(p); ok && now.Sub(p.at) <= span {
					hi = math.Max(hi, v)
				}
			}
		}
		y := func(v float64) float64 { return top + plotStripH - 2 - (plotStripH-4)*math.Min(v, hi)/hi }
		if s.ref != nil {
			if d := path(pts, now, span, every, x, y, s.ref); d != "" {
				b.WriteString(`<path class="ref" d="` + d + `" fill="none" stroke="` + s.color + `" stroke-width="1" stroke-dasharray="3 2" opacity="0.6"/>`)
			}
		}
		if d := path(pts, now, span, every, x, y, s.value); d != "" {
			b.WriteString(`<path class="curve" d="` + d + `" fill="none" stroke="` + s.color + `" stroke-width="1.5"/>`)
		}
		for _, p := range pts {
			if v, ok := s.value(p); ok {
				last, lastOK = v, true
			}
		}
		text := "–"
		if lastOK {
			text = s.unit(last)
		} else if s.ref != nil {
			text = "no canary"
		}
		b.WriteString(`<text class="value" x="` + num(plotLabelW+plotW+6) + `" y="` + num(top+11) +
			`" font-size="11" fill="#1d2430">` + text + `</text>`)
		scale := "max " + s.unit(hi)
		if s.ref != nil {
			scale = ""
			if n := len(pts); n > 0 {
				if v, ok := s.ref(pts[n-1]); ok {
					scale = "set " + s.unit(v)
				}
			}
		}
		b.WriteString(`<text class="scale" x="` + num(plotLabelW+plotW+6) + `" y="` + num(top+23) +
			`" font-size="9" fill="#8a93a3">` + scale + `</text>`)
		b.WriteString(`</g>`)
	}
	axis := float64(len(plotStrips)*(plotStripH+plotGap) + 8)
	b.WriteString(`<text x="` + num(plotLabelW) + `" y="` + num(axis) + `" font-size="8" fill="#8a93a3">−` + span.String() +
		`</text><text x="` + num(plotLabelW+plotW) + `" y="` + num(axis) + `" font-size="8" fill="#8a93a3" text-anchor="end">now</text>`)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // #nosec: numbers and fixed words only
}

// path is the SVG path of value over the points within span, broken where
// a sample is missing (two points more than 1.5 intervals apart) or the
// value is undefined. A lone point is drawn as a short dash.
func path(pts []point, now time.Time, span, every time.Duration, x func(time.Time) float64, y func(float64) float64,
	value func(point) (float64, bool)) string {
	var b strings.Builder
	var prev time.Time
	run := 0 // points in the current piece
	for _, p := range pts {
		v, ok := value(p)
		if !ok || now.Sub(p.at) > span || math.IsNaN(v) || math.IsInf(v, 0) {
			run = 0
			continue
		}
		if run > 0 && p.at.Sub(prev) > every*3/2 {
			run = 0
		}
		if run == 0 {
			b.WriteString("M" + num(x(p.at)) + " " + num(y(v)))
			b.WriteString("h1.5") // a lone point shows as a dash
			b.WriteString("M" + num(x(p.at)) + " " + num(y(v)))
		} else {
			b.WriteString("L" + num(x(p.at)) + " " + num(y(v)))
		}
		prev = p.at
		run++
	}
	return b.String()
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
