package embedded

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestRepairDamagedLostFile: a partition's #lost file that does not read
// (bit rot, an edit by hand) makes Open fail naming the file and the fix,
// `wail log repair`, which repairs it: the damaged bytes are kept in a
// quarantine file, and the gaps between the partition's segments (if any)
// are found and listed again, so the log opens and reads around them.
func TestRepairDamagedLostFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		gap  bool
	}{{"a gap between segments", true}, {"no gap", false}} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			l, _, _ := craftLog(t, mem, Options{}, 0, []int{3}, []int{3}, []int{3})
			noErr(t, l.Close())
			wantKeys, wantLost := "0 1 2 3 4 5 6 7 8", ""
			if tc.gap {
				noErr(t, mem.Remove(seg(3)))
				noErr(t, mem.SyncDir(craftedDir))
				if _, err := Repair("/log", Options{FS: mem, Logger: testLogger(t)}); err != nil {
					t.Fatal(err)
				}
				wantKeys, wantLost = "0 1 2 6 7 8", "[3, 6)"
			}
			lostPath := craftedDir + "/" + lostFile
			damaged := []byte(`[{"topic": "t", "partition": 0, "from": 3, "to"`)
			writeFile(t, mem, lostPath, damaged)

			l, err := Open("/log", Options{FS: mem, Logger: testLogger(t)})
			if err == nil {
				_ = l.Close()
				t.Fatal("Open accepted a damaged #lost file")
			}
			if !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), lostPath) || !strings.Contains(err.Error(), "wail log repair") {
				t.Fatalf("Open: %v\nwant ErrCorrupt naming %s and the fix", err, lostPath)
			}
			rep, err := Repair("/log", Options{FS: mem, Logger: testLogger(t)})
			if err != nil {
				t.Fatalf("Repair of a damaged #lost: %v", err)
			}
			var lost []string
			for _, l := range rep.Lost {
				lost = append(lost, fmt.Sprintf("[%d, %d)", l.From, l.To))
			}
			if strings.Join(lost, " ") != wantLost || len(rep.LostFiles) != 1 ||
				rep.LostFiles[0] != (LostRebuilt{File: lostPath, Quarantine: craftedDir + "/#quarantine-lost-1", Reason: rep.LostFiles[0].Reason}) ||
				!strings.Contains(rep.LostFiles[0].Reason, "unexpected end of JSON input") {
				t.Fatalf("repair report %+v; want the #lost file rebuilt and the gaps %q listed again", rep, wantLost)
			}
			after := mem.Crash()
			if b := readFile(t, after, craftedDir+"/#quarantine-lost-1"); !bytes.Equal(b, damaged) {
				t.Fatalf("quarantined #lost: %q, want the damaged bytes", b)
			}
			l = openLog(t, "/log", Options{FS: after})
			var keys []string
			for _, r := range readGaps(t, l, 0, 9) {
				keys = append(keys, fmt.Sprint(r.Offset))
			}
			noErr(t, l.Close())
			if got := strings.Join(keys, " "); got != wantKeys {
				t.Fatalf("read after the repair: %s, want %s", got, wantKeys)
			}
			if again, err := Repair("/log", Options{FS: after, Logger: testLogger(t)}); err != nil || len(again.Lost) != 0 || len(again.LostFiles) != 0 {
				t.Fatalf("second repair: %+v, %v; want nothing to do", again, err)
			}
		})
	}
}
