package bench

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strings"
)

// Plot geometry, in SVG user units.
const (
	plotW      = 1000.0
	plotLeft   = 70.0  // room for y labels
	plotRight  = 170.0 // room for the legend
	plotHeader = 48.0  // below the last header line, above the first panel title
	panelH     = 190.0
	panelGap   = 52.0
	plotBottom = 48.0
)

// series is one line of a panel; NaN values are gaps.
type series struct {
	name, color, dash string
	ys                []float64
}

// panel is one chart: a title, a y range and its lines over the shared x.
type panel struct {
	title      string
	top        float64
	log        bool
	ymin, ymax float64
	lines      []series
}

// writePlot draws latency percentiles, throughput and resolver lag over
// time as SVG (wrapped in a page when html is set).
func writePlot(out io.Writer, r *Result, html bool) error {
	w := bufio.NewWriter(out)
	xs := make([]float64, len(r.Samples))
	for i, s := range r.Samples {
		xs[i] = s.T
	}
	xmax := niceCeil(max(lastOr(xs, 1), 1))
	header := plotTitles(r)
	top := 26 + float64(len(header)-1)*18 + plotHeader
	panels := plotPanels(r, top)
	height := top + float64(len(panels))*(panelH+panelGap) - panelGap + plotBottom
	if html {
		fmt.Fprintf(w, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>wail bench</title></head>\n<body style=\"margin:0;background:#fff\">\n")
	}
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		plotW, height, plotW, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	for i, line := range header {
		style := `fill="#444"`
		switch {
		case i == 0:
			style = `font-size="17" font-weight="bold"`
		case strings.HasPrefix(line, "highest"), strings.HasPrefix(line, "confirmed"):
			style = `font-size="14" font-weight="bold" fill="#1f5f1f"`
		}
		fmt.Fprintf(w, `<text x="%.0f" y="%d" %s>%s</text>`+"\n", plotLeft, 26+i*18, style, esc(line))
	}
	for _, p := range panels {
		drawPanel(w, p, r, xs, xmax)
	}
	fmt.Fprintf(w, `<text x="%.0f" y="%.0f" text-anchor="middle" fill="#333">time since the bench started (s); shaded: warm-up (not in the step results)</text>`+"\n",
		plotLeft+(plotW-plotLeft-plotRight)/2, height-10)
	fmt.Fprintln(w, "</svg>")
	if html {
		fmt.Fprintln(w, "</body></html>")
	}
	return w.Flush()
}

// plotTitles are the header lines: title, find-max outcome (and the
// confirmed maximum with --confirm), backend, machine.
func plotTitles(r *Result) []string {
	c := r.Config
	lines := []string{fmt.Sprintf("wail bench: %s, batch %d, %s keys, %d-byte values, %d senders", c.Target, c.Batch, r.distString(), c.ValueSize, c.Concurrency)}
	if fm := r.FindMax; fm != nil {
		l := "highest sustainable rate: none found"
		if fm.Found {
			l = fmt.Sprintf("highest sustainable rate: %.0f writes/s (e2e p99 <= %s, lag not growing, no errors)", fm.MaxSustainableRate, fmtMs(fm.BoundMs, 1))
		}
		lines = append(lines, l)
		if fm.Confirm > 0 {
			lines = append(lines, fm.confirmedLine())
		}
	}
	b := r.Backend
	lines = append(lines, fmt.Sprintf("backend: log %s, bus %s, store %s, fsync %s, %d partitions; mix %s", b.IntentLog, b.EventBus, b.Store, b.Fsync, b.Partitions, c.Mix))
	m := r.Machine
	return append(lines, fmt.Sprintf("machine: %d CPUs (%s), load avg %s at start; %s", m.CPUs, m.CPUModel, m.LoadAvgFrom, r.StartedAt.Format("2006-01-02 15:04 UTC")))
}

// plotPanels builds the three panels from the samples.
func plotPanels(r *Result, top float64) []panel {
	n := len(r.Samples)
	lat := func(f func(Sample) (float64, int64)) []float64 {
		ys := make([]float64, n)
		for i, s := range r.Samples {
			v, c := f(s)
			ys[i] = math.NaN()
			if c > 0 {
				ys[i] = max(v, 0.001)
			}
		}
		return ys
	}
	val := func(f func(Sample) float64) []float64 {
		ys := make([]float64, n)
		for i, s := range r.Samples {
			ys[i] = f(s)
		}
		return ys
	}
	latency := panel{title: "latency per second (ms, log scale), measured from the intended send time", log: true, lines: []series{
		{"e2e p50", "#1f77b4", "", lat(func(s Sample) (float64, int64) { return s.E2E.P50, s.E2E.Count })},
		{"e2e p99", "#ff7f0e", "", lat(func(s Sample) (float64, int64) { return s.E2E.P99, s.E2E.Count })},
		{"e2e p99.9", "#d62728", "", lat(func(s Sample) (float64, int64) { return s.E2E.P999, s.E2E.Count })},
		{"ack p50", "#7f7f7f", "5,3", lat(func(s Sample) (float64, int64) { return s.Ack.P50, s.Ack.Count })},
		{"ack p99", "#2b2b2b", "5,3", lat(func(s Sample) (float64, int64) { return s.Ack.P99, s.Ack.Count })},
		{"delivery p99", "#17becf", "2,3", lat(func(s Sample) (float64, int64) { return s.Delivery.P99, s.Delivery.Count })},
	}}
	thr := panel{title: "throughput (per second)", lines: []series{
		{"target rate", "#000000", "6,4", val(func(s Sample) float64 {
			if s.TargetRate == 0 {
				return math.NaN() // between steps
			}
			return s.TargetRate
		})},
		{"writes/s (acked)", "#1f77b4", "", val(func(s Sample) float64 { return s.WritesPerSec })},
		{"events/s", "#2ca02c", "", val(func(s Sample) float64 { return s.EventsPerSec })},
	}}
	lag := panel{title: "resolver lag (intents logged, not yet resolved)", lines: []series{
		{"lag", "#9467bd", "", val(func(s Sample) float64 {
			if s.Lag < 0 {
				return math.NaN()
			}
			return float64(s.Lag)
		})},
	}}
	panels := []panel{latency, thr, lag}
	for i := range panels {
		panels[i].top = top + float64(i)*(panelH+panelGap)
		panels[i].ymin, panels[i].ymax = yRange(panels[i])
	}
	return panels
}

// yRange is the y range of a panel: whole decades on a log scale, 0 to a
// round number otherwise.
func yRange(p panel) (float64, float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, l := range p.lines {
		for _, y := range l.ys {
			if !math.IsNaN(y) {
				lo, hi = min(lo, y), max(hi, y)
			}
		}
	}
	if p.log {
		if math.IsInf(lo, 0) {
			return 0.1, 10
		}
		a, b := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
		if b <= a {
			b = a + 1
		}
		return math.Pow(10, a), math.Pow(10, b)
	}
	if math.IsInf(hi, 0) || hi <= 0 {
		return 0, 1
	}
	return 0, niceCeil(hi * 1.05)
}

func drawPanel(w *bufio.Writer, p panel, r *Result, xs []float64, xmax float64) {
	x0, x1 := plotLeft, plotW-plotRight
	y0, y1 := p.top+panelH, p.top
	px := func(x float64) float64 { return x0 + (x1-x0)*x/xmax }
	py := func(y float64) float64 {
		if p.log {
			return y0 - (y0-y1)*(math.Log10(y)-math.Log10(p.ymin))/(math.Log10(p.ymax)-math.Log10(p.ymin))
		}
		return y0 - (y0-y1)*(y-p.ymin)/(p.ymax-p.ymin)
	}
	fmt.Fprintf(w, `<text x="%.0f" y="%.0f" font-weight="bold" fill="#222">%s</text>`+"\n", x0, y1-8, esc(p.title))
	for _, st := range r.Steps { // warm-up shading and step boundaries
		fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#eeeeee"/>`+"\n",
			px(st.StartT), y1, max(px(st.MeasureT)-px(st.StartT), 0), y0-y1)
		if len(r.Steps) > 1 {
			fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" stroke-dasharray="2,3"/>`+"\n", px(st.StartT), y1, px(st.StartT), y0)
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="10" fill="#555">%s</text>`+"\n", px(st.StartT)+3, y1+11, esc(shortRate(st.TargetRate)+"/s"))
		}
	}
	drawYAxis(w, p, x0, x1, py)
	drawXAxis(w, xmax, x0, y0, px)
	for _, l := range p.lines {
		drawLine(w, l, xs, px, py)
	}
	fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", x0, y1, x1-x0, y0-y1)
	for i, l := range p.lines { // legend
		ly := y1 + 14 + float64(i)*18
		fmt.Fprintf(w, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="%s" stroke-width="2.5" stroke-dasharray="%s"/>`+"\n", x1+12, ly-4, x1+36, ly-4, l.color, dashOf(l))
		fmt.Fprintf(w, `<text x="%.0f" y="%.1f">%s</text>`+"\n", x1+42, ly, esc(l.name))
	}
}

func drawYAxis(w *bufio.Writer, p panel, x0, x1 float64, py func(float64) float64) {
	var ticks []float64
	if p.log {
		for v := p.ymin; v <= p.ymax*1.0001; v *= 10 {
			ticks = append(ticks, v)
		}
	} else {
		step := niceStep(p.ymax-p.ymin, 4)
		for v := p.ymin; v <= p.ymax+step/1e6; v += step {
			ticks = append(ticks, v)
		}
	}
	for _, v := range ticks {
		y := py(v)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#dddddd"/>`+"\n", x0, y, x1, y)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#333">%s</text>`+"\n", x0-6, y+4, esc(tickLabel(v)))
	}
}

func drawXAxis(w *bufio.Writer, xmax, x0, y0 float64, px func(float64) float64) {
	step := niceStep(xmax, 10)
	for v := 0.0; v <= xmax+step/1e6; v += step {
		x := px(v)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n", x, y0, x, y0+4)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#333">%s</text>`+"\n", x, y0+17, tickLabel(v))
	}
}

// drawLine draws a series as polylines, broken where a value is missing.
func drawLine(w *bufio.Writer, l series, xs []float64, px, py func(float64) float64) {
	dash := dashOf(l)
	var pts []string
	flush := func() {
		if len(pts) == 1 {
			pts = append(pts, pts[0]) // a lone point still shows (round caps)
		}
		if len(pts) > 0 {
			fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="1.8" stroke-linejoin="round" stroke-linecap="round" stroke-dasharray="%s" points="%s"/>`+"\n",
				l.color, dash, strings.Join(pts, " "))
		}
		pts = pts[:0]
	}
	for i, y := range l.ys {
		if math.IsNaN(y) {
			flush()
			continue
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(xs[i]), py(y)))
	}
	flush()
}

// niceStep is a step of 1, 2 or 5 times a power of ten giving about n
// intervals over span.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	switch f := raw / mag; {
	case f < 1.5:
		return mag
	case f < 3:
		return 2 * mag
	case f < 7:
		return 5 * mag
	}
	return 10 * mag
}

// niceCeil rounds v up to a multiple of a nice step.
func niceCeil(v float64) float64 {
	step := niceStep(v, 5)
	return math.Ceil(v/step) * step
}

func tickLabel(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", math.Round(v/1e5)/10)
	case v >= 1e3:
		return fmt.Sprintf("%gk", math.Round(v/1e2)/10)
	}
	return fmt.Sprintf("%g", math.Round(v*1000)/1000)
}

func shortRate(v float64) string {
	if v < 10000 {
		return fmt.Sprintf("%.0f", v)
	}
	return tickLabel(math.Round(v))
}

func dashOf(l series) string {
	if l.dash == "" {
		return "none"
	}
	return l.dash
}

func lastOr(xs []float64, def float64) float64 {
	if len(xs) == 0 {
		return def
	}
	return xs[len(xs)-1]
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

func esc(s string) string { return xmlEscaper.Replace(s) }
