package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

func findResult(rs []result, scenario, system string) *result {
	for i := range rs {
		if rs[i].Scenario == scenario && rs[i].System == system {
			return &rs[i]
		}
	}
	return nil
}

func fmtNum(p *float64, prec int) string {
	if p == nil {
		return "—"
	}
	return fmt.Sprintf("%.*f", prec, *p)
}

// ratio is one computed comparison.
type ratio struct {
	scenario string
	cmp      comparison
	value    float64
	ok       bool // both sides measured
}

func (r ratio) label() string {
	if r.cmp.latency {
		return fmt.Sprintf("%s (p99): %s vs %s", r.scenario, r.cmp.herald, r.cmp.anchor)
	}
	return fmt.Sprintf("%s: %s vs %s", r.scenario, r.cmp.herald, r.cmp.anchor)
}

func (r ratio) met() bool { return r.cmp.min == 0 || r.value >= r.cmp.min }

func computeRatios(scs []*scenario, rs []result) []ratio {
	var out []ratio
	for _, sc := range scs {
		for _, c := range sc.compare {
			r := ratio{scenario: sc.name, cmp: c}
			h, a := findResult(rs, sc.name, c.herald), findResult(rs, sc.name, c.anchor)
			if h != nil && a != nil {
				if c.latency {
					if h.P99us != nil && a.P99us != nil && *h.P99us > 0 {
						r.value, r.ok = *a.P99us / *h.P99us, true
					}
				} else if h.EventsPerSec != nil && a.EventsPerSec != nil && *a.EventsPerSec > 0 {
					r.value, r.ok = *h.EventsPerSec / *a.EventsPerSec, true
				}
			}
			out = append(out, r)
		}
	}
	return out
}

func fmtTarget(c comparison) string {
	switch {
	case c.min == 0:
		return ""
	case c.min < 1:
		return fmt.Sprintf("target ≥ %.2f×", c.min)
	default:
		return fmt.Sprintf("target ≥ %g×", c.min)
	}
}

func printTable(w io.Writer, scs []*scenario, rs []result) {
	ratios := computeRatios(scs, rs)
	for _, sc := range scs {
		fmt.Fprintf(w, "\n%s — %s\n", sc.name, sc.what)
		fmt.Fprintf(w, "  %-26s %13s %10s %10s %10s %9s\n", "system", "events/s", "p50 µs", "p99 µs", "allocs/ev", "RSS MB")
		for _, sys := range sc.systems {
			r := findResult(rs, sc.name, sys.name)
			if r == nil {
				continue
			}
			if r.EventsPerSec == nil {
				fmt.Fprintf(w, "  %-26s %s\n", sys.name, r.note)
				continue
			}
			fmt.Fprintf(w, "  %-26s %13s %10s %10s %10s %9s\n", sys.name,
				fmtNum(r.EventsPerSec, 0), fmtNum(r.P50us, 0), fmtNum(r.P99us, 0),
				fmtNum(r.AllocsPerEvent, 1), fmtNum(r.PeakRSSMB, 0))
			if r.note != "" {
				fmt.Fprintf(w, "  %-26s (%s)\n", "", r.note)
			}
		}
		for _, r := range ratios {
			if r.scenario != sc.name {
				continue
			}
			what := "herald/anchor events/s"
			if r.cmp.latency {
				what = "anchor/herald p99"
			}
			name := fmt.Sprintf("%s / %s", r.cmp.herald, r.cmp.anchor)
			if !r.ok {
				fmt.Fprintf(w, "  ratio %-48s %10s   (%s)  %s\n", name, "—", what, fmtTarget(r.cmp))
				continue
			}
			verdict := ""
			if r.cmp.min > 0 {
				verdict = "met"
				if !r.met() {
					verdict = "MISSED"
				}
			}
			fmt.Fprintf(w, "  ratio %-48s %9.3g×   (%s)  %s %s\n", name, r.value, what, fmtTarget(r.cmp), verdict)
		}
		if sc.name == "inproc-1to1" {
			h, a := findResult(rs, sc.name, "herald"), findResult(rs, sc.name, "watermill-gochannel")
			if h != nil && a != nil && h.PeakRSSMB != nil && a.PeakRSSMB != nil && *a.PeakRSSMB > 0 {
				v := *h.PeakRSSMB / *a.PeakRSSMB
				verdict := "met"
				if v > 0.1 {
					verdict = "MISSED"
				}
				fmt.Fprintf(w, "  %-54s %9.3g×   (herald/anchor)  target ≤ 0.1× %s\n", "peak RSS herald / watermill-gochannel", v, verdict)
			}
		}
	}
}

// writeSVG draws one horizontal bar per comparison, on a log scale centred
// on the anchor (1.0): bars to the right mean herald is faster.
func writeSVG(w io.Writer, scs []*scenario, rs []result, mode string) {
	var rows []ratio
	for _, r := range computeRatios(scs, rs) {
		if !r.ok || r.value > 0 {
			rows = append(rows, r)
		}
	}
	const (
		labelW = 470
		plotW  = 520
		rowH   = 26
		top    = 90
		right  = 70
	)
	height := top + len(rows)*rowH + 60
	width := labelW + plotW + right
	// Decades covering every ratio and target, 1.0 included.
	lo, hi := 1.0, 1.0
	for _, r := range rows {
		if !r.ok {
			continue
		}
		lo, hi = math.Min(lo, r.value), math.Max(hi, r.value)
		if r.cmp.min > 0 {
			lo, hi = math.Min(lo, r.cmp.min), math.Max(hi, r.cmp.min)
		}
	}
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dhi-dlo < 1 {
		dhi = dlo + 1
	}
	x := func(v float64) float64 {
		return labelW + (math.Log10(v)-dlo)/(dhi-dlo)*plotW
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="13">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">herald / anchor (log scale; right of 1.0: herald ahead)</text>`+"\n", 10)
	fmt.Fprintf(&b, `<text x="%d" y="44" fill="#555">throughput ratio herald/anchor; latency rows: p99 anchor/herald. Green: target met or no target; red: target missed; ▏ target. Mode: %s.</text>`+"\n", 10, html.EscapeString(mode))
	// shade every other scenario, so rows of one scenario read together
	band, prev := false, ""
	for i, r := range rows {
		if r.scenario != prev {
			band, prev = !band, r.scenario
		}
		if band {
			fmt.Fprintf(&b, `<rect x="0" y="%d" width="%d" height="%d" fill="#f4f6f8"/>`+"\n", top+i*rowH, labelW+plotW, rowH)
		}
	}
	// grid and axis
	axisY := top + len(rows)*rowH
	for d := dlo; d <= dhi; d++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, d)
			if v > math.Pow(10, dhi)+1e-9 {
				break
			}
			xx := x(v)
			stroke, sw := "#eee", 1
			if m == 1 {
				stroke = "#ccc"
			}
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="%d"/>`+"\n", xx, top-6, xx, axisY, stroke, sw)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#333">%s</text>`+"\n", xx, axisY+18, fmtTick(v))
		}
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", labelW, axisY, labelW+plotW, axisY)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#333">ratio (×)</text>`+"\n", labelW+plotW/2, axisY+40)
	for i, r := range rows {
		y := top + i*rowH
		if !r.ok {
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="#888">%s</text>`+"\n", labelW-8, y+17, html.EscapeString(r.label()))
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#888">not measured</text>`+"\n", x(1)+4, y+17)
			continue
		}
		color := "#2e8b57"
		if !r.met() {
			color = "#c0392b"
		}
		x0, x1 := x(1), x(r.value)
		if x1 < x0 {
			x0, x1 = x1, x0
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-8, y+17, html.EscapeString(r.label()))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x0, y+5, math.Max(x1-x0, 1), rowH-10, color)
		// the value goes right of the bar, or right of the anchor line
		// for bars that point left
		tx := math.Max(x(r.value), x(1)) + 4
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#222">%s×</text>`+"\n", tx, y+17, fmtRatio(r.value))
		if r.cmp.min > 0 {
			tx := x(r.cmp.min)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#000" stroke-width="2"/>`+"\n", tx, y+2, tx, y+rowH-2)
		}
	}
	// the anchor line
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#000" stroke-dasharray="4 3"/>`+"\n", x(1), top-10, x(1), axisY)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-weight="bold">anchor = 1.0</text>`+"\n", x(1), top-14)
	b.WriteString("</svg>\n")
	io.WriteString(w, b.String())
}

func fmtTick(v float64) string {
	if v >= 1 {
		return fmt.Sprintf("%g", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", v), "0"), ".")
}

func fmtRatio(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
