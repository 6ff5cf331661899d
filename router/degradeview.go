package router

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/valyala/fasthttp"

	"github.com/modelgate/modelgate/degrade"
)

// maxPinReason bounds the reason an admin gives a pin, in bytes.
const maxPinReason = 200

// degradeView is one route in GET /admin/degrade: degrade.RouteStatus with
// times in RFC 3339 (UTC, seconds) and durations as Go duration strings
// ("2m30s", "230ms"), which time.ParseDuration reads back.
type degradeView struct {
	Route       string       `json:"route"`
	Tier        degrade.Tier `json:"tier"`         // effective: the pin, else auto
	Auto        degrade.Tier `json:"auto"`         // earned by the signals, with hysteresis
	SignalsTier degrade.Tier `json:"signals_tier"` // the last signals alone
	Pinned      bool         `json:"pinned"`
	PinnedUntil string       `json:"pinned_until,omitempty"` // "" while pinned: until unpinned
	PinnedFor   string       `json:"pinned_for,omitempty"`   // time left of the pin
	PinReason   string       `json:"pin_reason,omitempty"`
	Since       string       `json:"since,omitempty"`       // when tier last changed
	InTierFor   string       `json:"in_tier_for,omitempty"` // how long ago that was
	Reason      string       `json:"reason,omitempty"`
	Signals     signalsView  `json:"signals"`
}

// signalsView is degrade.Signals with durations as strings.
type signalsView struct {
	Ready       float64 `json:"ready"`
	BreakerOpen float64 `json:"breaker_open"`
	InFlight    int     `json:"in_flight"`
	Capacity    int     `json:"capacity"`
	Requests    int     `json:"requests"`
	ErrorRatio  float64 `json:"error_ratio"`
	TTFTp95     string  `json:"ttft_p95"`
	TTFTSLO     string  `json:"ttft_slo,omitempty"` // "" for none
}

func newDegradeView(st degrade.RouteStatus, now time.Time) degradeView {
	s := st.Signals
	v := degradeView{Route: st.Route, Tier: st.Tier, Auto: st.Auto, SignalsTier: st.SignalsTier, Pinned: st.Pinned,
		PinReason: st.PinReason, Reason: st.Reason,
		Signals: signalsView{Ready: s.Ready, BreakerOpen: s.BreakerOpen, InFlight: s.InFlight, Capacity: s.Capacity,
			Requests: s.Requests, ErrorRatio: s.ErrorRatio, TTFTp95: humanDuration(s.TTFTp95, time.Millisecond)}}
	if s.TTFTSLO > 0 {
		v.Signals.TTFTSLO = humanDuration(s.TTFTSLO, time.Millisecond)
	}
	if st.Pinned && !st.PinnedUntil.IsZero() {
		v.PinnedUntil = rfc3339(st.PinnedUntil)
		v.PinnedFor = humanDuration(st.PinnedUntil.Sub(now), time.Second)
	}
	if !st.Since.IsZero() {
		v.Since, v.InTierFor = rfc3339(st.Since), humanDuration(now.Sub(st.Since), time.Second)
	}
	return v
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (r *Router) degradeViews() []degradeView {
	now := r.now()
	sts := r.gate.Statuses()
	out := make([]degradeView, 0, len(sts))
	for _, st := range sts {
		out = append(out, newDegradeView(st, now))
	}
	return out
}

// writeDegradeText writes the routes' tiers as an aligned table for a
// terminal: GET /admin/degrade?format=text.
func writeDegradeText(ctx *fasthttp.RequestCtx, views []degradeView) {
	ctx.SetContentType("text/plain; charset=utf-8")
	tw := tabwriter.NewWriter(ctx, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tTIER\tAUTO\tSIGNALS\tFOR\tPINNED\tREQUESTS\tERRORS\tTTFT P95\tREASON")
	for _, v := range views {
		pin := "no"
		switch {
		case v.Pinned && v.PinnedUntil == "":
			pin = "until unpinned"
		case v.Pinned:
			pin = "until " + v.PinnedUntil + " (" + v.PinnedFor + " left)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", v.Route, v.Tier, v.Auto, v.SignalsTier,
			orDash(v.InTierFor), pin, v.Signals.Requests, formatFloat(100*v.Signals.ErrorRatio, 1)+" %",
			v.Signals.TTFTp95, orDash(v.Reason))
	}
	_ = tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// pinReason reads the reason argument of a pin: printable, at most
// maxPinReason bytes.
func pinReason(args *fasthttp.Args) (string, error) {
	reason := strings.TrimSpace(string(args.Peek("reason")))
	if len(reason) > maxPinReason {
		return "", fmt.Errorf("reason: %d bytes, at most %d", len(reason), maxPinReason)
	}
	for _, c := range reason {
		if !unicode.IsPrint(c) {
			return "", fmt.Errorf("reason: %s is not printable", strconv.QuoteRune(c))
		}
	}
	return reason, nil
}
