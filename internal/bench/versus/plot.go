package versus

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"slices"
)

// Plot geometry, in SVG user units.
const (
	pw      = 900.0
	pLeft   = 80.0
	pRight  = 150.0
	pTop    = 90.0
	pPanelH = 220.0
	pGap    = 70.0
)

var pipeColors = map[string]string{PipeWail: "#1f77b4", PipeDebezium: "#d62728"}

// plotPanel is one chart over the target rate.
type plotPanel struct {
	title string
	log   bool
	y     func(StepResult) float64
	dash  string // a second series per pipeline, dashed (nil: none)
	y2    func(StepResult) float64
	unit  string
}

// writePlot draws, over the target rate, e2e p99 and p50, the achieved
// writes/s and the CPU per 1000 writes of each pipeline; filled points are
// sustainable steps.
func writePlot(out io.Writer, r *Result) error {
	w := bufio.NewWriter(out)
	panels := []plotPanel{
		{title: "end-to-end latency (ms, log scale): p99 solid, p50 dashed", log: true, unit: "ms",
			y: func(s StepResult) float64 { return s.E2E.P99 }, dash: "5,3", y2: func(s StepResult) float64 { return s.E2E.P50 }},
		{title: "acknowledged writes/s (target: grey diagonal)", unit: "/s",
			y: func(s StepResult) float64 { return s.WritesPerSec }},
		{title: "CPU seconds per 1000 writes: the pipeline's process solid, with PostgreSQL + Kafka dashed", unit: "s",
			y: func(s StepResult) float64 { return s.CPUPer1kWrites }, dash: "5,3", y2: func(s StepResult) float64 { return s.CPUPer1kWritesWithShared }},
	}
	height := pTop + float64(len(panels))*(pPanelH+pGap) + 10
	var rates []float64
	for _, p := range r.Pipelines {
		for _, s := range p.Steps {
			rates = append(rates, s.TargetRate)
		}
	}
	xmax := 1.0
	if len(rates) > 0 {
		xmax = slices.Max(rates) * 1.05
	}
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n", pw, height, pw, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="#fff"/>`+"\n")
	fmt.Fprintf(w, `<text x="%.0f" y="26" font-size="17" font-weight="bold">wail vs Debezium on the same PostgreSQL and Kafka, same open-loop load</text>`+"\n", pLeft)
	sub := "highest sustainable rate:"
	for _, p := range r.Pipelines {
		sub += fmt.Sprintf(" %s %.0f/s;", p.Name, p.MaxSustainableRate)
	}
	fmt.Fprintf(w, `<text x="%.0f" y="46" font-size="13" fill="#333">%s</text>`+"\n", pLeft, html.EscapeString(sub))
	fmt.Fprintf(w, `<text x="%.0f" y="64" fill="#555">%s; %d CPUs; load avg %s at start; filled points: sustainable steps</text>`+"\n",
		pLeft, r.StartedAt.Format("2006-01-02 15:04 UTC"), r.Machine.CPUs, html.EscapeString(r.Machine.LoadAvgStart))
	for i, pn := range panels {
		top := pTop + float64(i)*(pPanelH+pGap)
		drawRatePanel(w, r, pn, top, xmax)
	}
	fmt.Fprintln(w, "</svg>")
	return w.Flush()
}

func drawRatePanel(w *bufio.Writer, r *Result, pn plotPanel, top, xmax float64) {
	x0, x1 := pLeft, pw-pRight
	var ys []float64
	for _, p := range r.Pipelines {
		for _, s := range p.Steps {
			for _, f := range []func(StepResult) float64{pn.y, pn.y2} {
				if f != nil && f(s) > 0 {
					ys = append(ys, f(s))
				}
			}
			if pn.unit == "/s" {
				ys = append(ys, s.TargetRate)
			}
		}
	}
	ymin, ymax := 0.0, 1.0
	if len(ys) > 0 {
		ymax = slices.Max(ys) * 1.1
		if pn.log {
			ymin = math.Pow(10, math.Floor(math.Log10(slices.Min(ys))))
			ymax = math.Pow(10, math.Ceil(math.Log10(slices.Max(ys))))
		}
	}
	sx := func(x float64) float64 { return x0 + (x1-x0)*x/xmax }
	sy := func(y float64) float64 {
		if pn.log {
			y = max(y, ymin)
			return top + pPanelH - pPanelH*(math.Log10(y)-math.Log10(ymin))/(math.Log10(ymax)-math.Log10(ymin))
		}
		return top + pPanelH - pPanelH*(y-ymin)/(ymax-ymin)
	}
	fmt.Fprintf(w, `<text x="%.0f" y="%.0f" font-weight="bold">%s</text>`+"\n", x0, top-10, html.EscapeString(pn.title))
	fmt.Fprintf(w, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", x0, top, x1-x0, pPanelH)
	// y ticks
	var ticks []float64
	if pn.log {
		for v := ymin; v <= ymax*1.001; v *= 10 {
			ticks = append(ticks, v)
		}
	} else {
		for i := range 5 {
			ticks = append(ticks, ymin+(ymax-ymin)*float64(i)/4)
		}
	}
	for _, t := range ticks {
		y := sy(t)
		fmt.Fprintf(w, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/><text x="%.0f" y="%.1f" text-anchor="end" fill="#444">%s</text>`+"\n",
			x0, y, x1, y, x0-6, y+4, tickLabel(t))
	}
	// x ticks at every rate stepped
	seen := map[float64]bool{}
	for _, p := range r.Pipelines {
		for _, s := range p.Steps {
			if seen[s.TargetRate] {
				continue
			}
			seen[s.TargetRate] = true
			x := sx(s.TargetRate)
			fmt.Fprintf(w, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#f2f2f2"/><text x="%.1f" y="%.0f" text-anchor="middle" fill="#444" font-size="10">%.0f</text>`+"\n",
				x, top, x, top+pPanelH, x, top+pPanelH+14, s.TargetRate)
		}
	}
	fmt.Fprintf(w, `<text x="%.0f" y="%.0f" text-anchor="middle" fill="#333">target rate (writes/s)</text>`+"\n", (x0+x1)/2, top+pPanelH+32)
	if pn.unit == "/s" {
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#bbb" stroke-dasharray="2,2"/>`+"\n", sx(0), sy(0), sx(xmax), sy(min(xmax, ymax)))
	}
	for li, p := range r.Pipelines {
		color := pipeColors[p.Name]
		steps := slices.Clone(p.Steps)
		slices.SortFunc(steps, func(a, b StepResult) int { return int(a.TargetRate - b.TargetRate) })
		series := []struct {
			f    func(StepResult) float64
			dash string
		}{{pn.y, ""}}
		if pn.y2 != nil {
			series = append(series, struct {
				f    func(StepResult) float64
				dash string
			}{pn.y2, pn.dash})
		}
		for _, se := range series {
			var pts []string
			for _, s := range steps {
				if v := se.f(s); v > 0 {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", sx(s.TargetRate), sy(v)))
				}
			}
			if len(pts) > 1 {
				fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s" points="%s"/>`+"\n", color, se.dash, join(pts))
			}
			for _, s := range steps {
				if v := se.f(s); v > 0 {
					fill := "#fff"
					if s.Sustainable {
						fill = color
					}
					fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s" stroke="%s" stroke-width="1.5"/>`+"\n", sx(s.TargetRate), sy(v), fill, color)
				}
			}
		}
		ly := top + 20 + float64(li)*20
		fmt.Fprintf(w, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2"/><text x="%.0f" y="%.0f">%s</text>`+"\n",
			x1+12, ly, x1+36, ly, color, x1+42, ly+4, html.EscapeString(p.Name))
	}
}

func tickLabel(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0fk", v/1000)
	case v >= 10 || v == 0:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2g", v)
	}
}

func join(pts []string) string {
	out := ""
	for i, p := range pts {
		if i > 0 {
			out += " "
		}
		out += p
	}
	return out
}
