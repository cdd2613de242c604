package eventbus

import (
	"testing"
	"time"
)

// TestSnapshotsDefaults: a Snapshots setting left at zero (or below)
// takes the default its doc comment gives, and a set one is kept. A zero
// taken as it is would hang every snapshot (no chunk slot, a read limit
// of no rows) or make every stream's filter refuse its first key.
func TestSnapshotsDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		got, want int
	}{
		{"MaxKeys unset", Snapshots{}.maxKeys(), 1_000_000},
		{"MaxKeys negative", Snapshots{MaxKeys: -1}.maxKeys(), 1_000_000},
		{"MaxKeys set", Snapshots{MaxKeys: 1}.maxKeys(), 1},
		{"Chunks unset", orDefault(Snapshots{}.Chunks, 8), 8},
		{"negative", orDefault(-1, 8), 8},
		{"set", orDefault(1, 8), 1},
		{"Poll unset", int(orDefault(Snapshots{}.Poll, 100*time.Millisecond)), int(100 * time.Millisecond)},
		{"Poll set", int(orDefault(time.Nanosecond, 100*time.Millisecond)), 1},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, tc.got, tc.want)
		}
	}
}
