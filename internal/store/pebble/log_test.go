package pebble

import (
	"log/slog"
	"slices"
	"testing"
)

// TestSlogLogger: Pebble's informational lines go to the logger at Debug
// (only when Debug is enabled: Pebble is chatty), its errors at Error,
// each marked as Pebble's.
func TestSlogLogger(t *testing.T) {
	for _, tc := range []struct {
		name  string
		level slog.Level
		want  []string // the levels of the records, in order
	}{
		{"debug enabled", slog.LevelDebug, []string{"DEBUG", "ERROR"}},
		{"info", slog.LevelInfo, []string{"ERROR"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs lockedBuffer
			log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: tc.level}))
			l := slogLogger{l: log, f: newFailure(log)}
			l.Infof("opened %s", "WAL 000001")
			l.Errorf("background error: %d", 5)
			recs := logs.records(t)
			var got []string
			for _, r := range recs {
				got = append(got, r["level"].(string))
				if r["component"] != "pebble" {
					t.Errorf("record %v not marked as Pebble's", r)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("levels %v, want %v: %v", got, tc.want, recs)
			}
			if msg := recs[len(recs)-1]["msg"]; msg != "background error: 5" {
				t.Errorf("error record %q", msg)
			}
			if len(recs) == 2 && recs[0]["msg"] != "opened WAL 000001" {
				t.Errorf("info record %q", recs[0]["msg"])
			}
		})
	}
}
