package embedded

import (
	"errors"
	"syscall"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestActiveSegmentReopenFails: the active segment's file, closed by the
// file cache (readers of older segments took its place), cannot be opened
// again. An I/O error or a file gone (deleted under the log) breaks the
// partition, which the log's Health reports (wail stops: the records it
// acknowledged there may be gone); too many open files is the process's
// condition, not the disk's: the append fails and the next one, once the
// files are back, succeeds. Before, every case failed the appends while
// Health said nothing.
func TestActiveSegmentReopenFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		err    error
		broken bool
	}{
		{"I/O error", syscall.EIO, true},
		{"file gone", syscall.ENOENT, true},
		{"too many open files", syscall.EMFILE, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mem := vfs.NewMem()
			efs := vfs.NewErrorFS(mem)
			l := openLog(t, "/log", Options{FS: efs, SegmentBytes: 256, MaxOpenFiles: 1})
			defer l.Close()
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			for i := range 8 {
				appendBatch(t, l, string(rune('a'+i))+"x", 2)
			}
			readFrom(t, l, 0, 0, 1) // the first segment takes the only file
			efs.Inject(vfs.Fault{Ops: vfs.OpOpen, Path: "*.log", Err: tc.err})
			if _, err := tryAppend(l, "z"); !errors.Is(err, intentlog.ErrStorage) {
				t.Fatalf("append whose segment cannot be opened: %v, want ErrStorage", err)
			}
			efs.Clear()
			health := l.Health()
			_, err := tryAppend(l, "y")
			if tc.broken {
				if !errors.Is(health, intentlog.ErrStorage) || !errors.Is(err, intentlog.ErrStorage) {
					t.Fatalf("after the failed open: Health %v, next append %v; want the partition broken", health, err)
				}
				return
			}
			if health != nil || err != nil {
				t.Fatalf("after too many open files: Health %v, next append %v; want both nil", health, err)
			}
		})
	}
}
