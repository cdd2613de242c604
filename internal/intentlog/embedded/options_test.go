package embedded

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestOptions: zero options get the documented defaults, set ones are kept
// (MaxRecordBytes defaults to what fits in MaxBatchBytes), and each limit
// out of range fails Open with a message naming the option.
func TestOptions(t *testing.T) {
	var o Options
	noErr(t, o.normalize())
	if o.SegmentBytes != 64<<20 || o.IndexIntervalBytes != 4<<10 || o.MaxBatchBytes != 16<<20 || o.MaxRecordBytes != 1<<20 ||
		o.RetentionCheckInterval != time.Minute || o.SpaceProbeInterval != time.Second ||
		o.MaxOpenFiles != defaultMaxOpenFiles() || o.Logger != slog.Default() || o.FS != vfs.Default ||
		o.Now == nil || time.Since(o.Now()) > time.Hour {
		t.Fatalf("defaults: %+v", o)
	}

	mem := vfs.NewMem()
	logger := slog.New(slog.DiscardHandler)
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	set := Options{SegmentBytes: 1 << 30, IndexIntervalBytes: 100, MaxBatchBytes: 1000, RetentionCheckInterval: -1,
		SpaceProbeInterval: 7 * time.Millisecond, MaxOpenFiles: 3, Logger: logger, Now: func() time.Time { return at }, FS: mem}
	o = set
	noErr(t, o.normalize())
	if o.SegmentBytes != 1<<30 || o.IndexIntervalBytes != 100 || o.MaxBatchBytes != 1000 || o.MaxRecordBytes != 1000-batchHeaderLen ||
		o.RetentionCheckInterval != -1 || o.SpaceProbeInterval != 7*time.Millisecond || o.MaxOpenFiles != 3 ||
		o.Logger != logger || o.FS != mem || !o.Now().Equal(at) {
		t.Fatalf("set options changed: %+v", o)
	}
	o = Options{MaxBatchBytes: batchHeaderLen + 1, SpaceProbeInterval: -time.Second}
	noErr(t, o.normalize())
	if o.MaxRecordBytes != 1 || o.SpaceProbeInterval != time.Second {
		t.Fatalf("MaxRecordBytes %d for a MaxBatchBytes of %d, probe every %v", o.MaxRecordBytes, o.MaxBatchBytes, o.SpaceProbeInterval)
	}

	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{SegmentBytes: -1}, "option SegmentBytes = -1 out of range"},
		{Options{SegmentBytes: 1<<30 + 1}, "option SegmentBytes = 1073741825 out of range"},
		{Options{IndexIntervalBytes: -1}, "option IndexIntervalBytes = -1 out of range"},
		{Options{MaxBatchBytes: 1<<30 + 1}, "option MaxBatchBytes = 1073741825 out of range"},
		{Options{MaxBatchBytes: batchHeaderLen}, "option MaxBatchBytes = 29 too small"},
		{Options{MaxRecordBytes: -5}, "option MaxRecordBytes = -5 out of range"},
		{Options{MaxOpenFiles: -1}, "option MaxOpenFiles = -1 is negative"},
	} {
		tc.o.FS = vfs.NewMem()
		if l, err := Open("/log", tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			if err == nil {
				_ = l.Close()
			}
			t.Errorf("Open with %+v: %v; want %q", tc.o, err, tc.want)
		}
	}
}

func TestCheckPartitions(t *testing.T) {
	for n, ok := range map[int32]bool{-1: false, 0: false, 1: true, maxPartitions: true, maxPartitions + 1: false} {
		if err := checkPartitions(n); (err == nil) != ok {
			t.Errorf("checkPartitions(%d) = %v", n, err)
		}
	}
	l := openLog(t, "/log", Options{FS: vfs.NewMem()})
	defer l.Close()
	for _, n := range []int32{0, maxPartitions + 1} {
		if err := l.CreateTopic(context.Background(), testTopic, n, intentlog.TopicOptions{}); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("CreateTopic with %d partitions: %v", n, err)
		}
	}
}

// TestBadMeta: a topic whose meta file cannot be trusted stops Open with
// ErrCorrupt naming the file; a topic directory without meta (an
// interrupted creation) is ignored, with a warning.
func TestBadMeta(t *testing.T) {
	for _, meta := range []string{`{"version":1,`, `{"version":2,"partitions":1}`, `{"version":1,"partitions":0}`,
		`{"version":1,"partitions":65537}`} {
		fsys := vfs.NewMem()
		l := openLog(t, "/log", Options{FS: fsys})
		createTestTopic(t, l, 1, intentlog.TopicOptions{})
		noErr(t, l.Close())
		writeFile(t, fsys, "/log/t/meta", []byte(meta))
		l, err := Open("/log", Options{FS: fsys, Logger: testLogger(t)})
		if err == nil || !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), "/log/t/meta") {
			if err == nil {
				_ = l.Close()
			}
			t.Errorf("Open with meta %s: %v; want ErrCorrupt naming the file", meta, err)
		}
	}

	fsys := vfs.NewMem()
	noErr(t, fsys.MkdirAll("/log/t/0", 0o755))
	logs := &logBuffer{}
	l := openLog(t, "/log", Options{FS: fsys, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	defer l.Close()
	if _, err := l.Partitions(context.Background(), testTopic); !errors.Is(err, intentlog.ErrUnknownTopic) {
		t.Fatalf("a topic without meta: %v, want ErrUnknownTopic", err)
	}
	if !strings.Contains(logs.String(), "ignoring topic directory without meta") {
		t.Fatalf("no warning:\n%s", logs)
	}
	createTestTopic(t, l, 2, intentlog.TopicOptions{})
}

// TestUnknownPartition: partitions outside [0, n) are unknown to every call
// that takes one.
func TestUnknownPartition(t *testing.T) {
	l := openLog(t, "/log", Options{FS: vfs.NewMem()})
	defer l.Close()
	createTestTopic(t, l, 2, intentlog.TopicOptions{})
	ctx := context.Background()
	for _, p := range []int32{-1, 2} {
		_, _, berr := l.Bounds(ctx, testTopic, p)
		_, rerr := l.NewReader(testTopic, p, 0)
		_, oerr := l.OffsetForTime(ctx, testTopic, p, time.Now())
		for _, err := range []error{berr, rerr, oerr} {
			if !errors.Is(err, intentlog.ErrUnknownTopic) || !strings.Contains(err.Error(), "topic has 2 partitions") {
				t.Errorf("partition %d: %v, want ErrUnknownTopic", p, err)
			}
		}
	}
	if _, _, err := l.Bounds(ctx, testTopic, 1); err != nil {
		t.Fatalf("Bounds of partition 1: %v", err)
	}
}
