package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/latency"
)

func sampleResult() *Result {
	o := DefaultOptions()
	r := newResult(&o)
	r.Backend = Backend{Target: "in-process", IntentLog: "embedded", EventBus: "embedded", Store: "pebble", Fsync: "on", Partitions: 8}
	r.FindMax = &FindMax{Found: true, MaxSustainableRate: 1500, Confirm: 2, Confirmed: true, ConfirmedRate: 1000, ConfirmedWritesPerSec: 990}
	r.Steps = []Step{{Index: 0, TargetRate: 1000, StartT: 0, MeasureT: 2}, {Index: 1, TargetRate: 1500, StartT: 12, MeasureT: 14}}
	for i := range 24 {
		s := Sample{T: float64(i + 1), Step: i / 12, Phase: phaseMeasure, TargetRate: 1000, WritesPerSec: 990, EventsPerSec: 950,
			Ack: latency.Percentiles{Count: 10, P50: 2, P99: 9}, E2E: latency.Percentiles{Count: 10, P50: 5, P99: 40, P999: 90}, Delivery: latency.Percentiles{Count: 9, P99: 3}, Lag: int64(i * 10)}
		if i == 5 {
			s.E2E, s.Lag = latency.Percentiles{}, -1 // gaps
		}
		r.Samples = append(r.Samples, s)
	}
	return r
}

// TestPlotIsWellFormed checks that the SVG (and the HTML page) parse as XML
// and hold the three panels, every series and the axis labels.
func TestPlotIsWellFormed(t *testing.T) {
	t.Parallel()
	for _, html := range []bool{false, true} {
		var buf bytes.Buffer
		if err := writePlot(&buf, sampleResult(), html); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if html != strings.HasPrefix(out, "<!DOCTYPE html>") {
			t.Errorf("html=%v: output starts with %.30q", html, out)
		}
		svg := out[strings.Index(out, "<svg"):]
		svg = svg[:strings.Index(svg, "</svg>")+len("</svg>")]
		elems := map[string]int{}
		dec := xml.NewDecoder(strings.NewReader(svg))
		for {
			tok, err := dec.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("html=%v: not well-formed XML: %v", html, err)
			}
			if se, ok := tok.(xml.StartElement); ok {
				elems[se.Name.Local]++
			}
		}
		if elems["polyline"] < 10 { // 10 series, gaps split some in two
			t.Errorf("%d polylines", elems["polyline"])
		}
		for _, want := range []string{"e2e p99.9", "events/s", "resolver lag", "highest sustainable rate: 1500", "confirmed maximum: 1000 writes/s (990 achieved", "1k", "1500/s"} {
			if !strings.Contains(svg, want) {
				t.Errorf("plot lacks %q", want)
			}
		}
	}
}

func TestNiceNumbers(t *testing.T) {
	t.Parallel()
	tests := []struct{ span, want float64 }{{10, 2}, {100, 20}, {7, 1}, {3000, 500}, {0.3, 0.05}}
	for _, tc := range tests {
		if got := niceStep(tc.span, 5); got < tc.want*0.999 || got > tc.want*1.001 {
			t.Errorf("niceStep(%v, 5) = %v, want %v", tc.span, got, tc.want)
		}
	}
	for v, want := range map[float64]string{1500: "1.5k", 20000: "20k", 2e6: "2M", 0.1: "0.1", 250: "250"} {
		if got := tickLabel(v); got != want {
			t.Errorf("tickLabel(%v) = %q, want %q", v, got, want)
		}
	}
}
