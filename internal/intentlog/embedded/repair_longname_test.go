package embedded

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestRepairOffsetsLongGroupName: the damaged offsets file of a group with
// a long name (up to maxNameLen) is repaired on a real disk too, whose file
// names are at most 255 bytes: its quarantine file's name, and the
// temporary one written first, fit; it holds the whole name while it fits.
// A second damage gets a quarantine file of its own.
func TestRepairOffsetsLongGroupName(t *testing.T) {
	for _, n := range []int{236, 237, maxNameLen} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			dir := t.TempDir()
			group := strings.Repeat("g", n)
			l := openLog(t, dir, Options{})
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			appendBatch(t, l, "a", 3)
			noErr(t, l.Commit(context.Background(), group, testTopic, map[int32]int64{0: 2}))
			noErr(t, l.Close())
			path := filepath.Join(dir, testTopic, offsetsDir, group)
			var qs []string
			for i, junk := range []string{"junk", "more junk"} {
				noErr(t, os.WriteFile(path, []byte(junk), 0o644))
				rep, err := Repair(dir, Options{Logger: testLogger(t)})
				if err != nil {
					t.Fatalf("Repair %d: %v", i+1, err)
				}
				if len(rep.Offsets) != 1 {
					t.Fatalf("repair report %+v; want the offsets file replaced", rep)
				}
				q := rep.Offsets[0].Quarantine
				if b, err := os.ReadFile(q); err != nil || string(b) != junk {
					t.Fatalf("quarantine %s: %q, %v; want %q", q, b, err, junk)
				}
				qs = append(qs, filepath.Base(q))
			}
			if whole := "#quarantine-" + group + "-1"; n == 236 && qs[0] != whole {
				t.Errorf("quarantine file %s, want %s", qs[0], whole)
			}
			if qs[0] == qs[1] || !strings.HasPrefix(qs[0], "#quarantine-ggg") {
				t.Errorf("quarantine files %q", qs)
			}
			l = openLog(t, dir, Options{})
			defer l.Close()
			if got, err := l.Committed(context.Background(), group, testTopic); err != nil || got[0] != 0 {
				t.Fatalf("Committed after the repair = %v, %v; want partition 0 at 0", got, err)
			}
		})
	}
}
