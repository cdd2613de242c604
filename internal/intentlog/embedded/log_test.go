package embedded

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

func TestTooLarge(t *testing.T) {
	t.Parallel()
	l := openLog(t, t.TempDir(), Options{MaxRecordBytes: 200, MaxBatchBytes: 1000, NoSync: true})
	defer l.Close()
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	ctx := context.Background()
	big := &intentlog.Record{Key: []byte("k"), Value: make([]byte, 300)}
	if err := l.Append(ctx, testTopic, []*intentlog.Record{big}); !errors.Is(err, intentlog.ErrTooLarge) {
		t.Errorf("append of a 300-byte record with MaxRecordBytes 200: %v, want ErrTooLarge", err)
	}
	var many []*intentlog.Record
	for range 10 {
		many = append(many, &intentlog.Record{Key: []byte("k"), Value: make([]byte, 150)})
	}
	if err := l.Append(ctx, testTopic, many); !errors.Is(err, intentlog.ErrTooLarge) {
		t.Errorf("append of 10×150 bytes with MaxBatchBytes 1000: %v, want ErrTooLarge", err)
	}
	if err := l.Append(ctx, testTopic, many[:5]); err != nil {
		t.Errorf("append of 5×150 bytes: %v", err)
	}
	if _, end, _ := l.Bounds(ctx, testTopic, 0); end != 5 {
		t.Errorf("end = %d, want 5: failed appends must write nothing", end)
	}
}

// TestTooLargeEdges: a record of exactly MaxRecordBytes encoded, and an
// Append of exactly MaxBatchBytes (batch header included), are accepted;
// one byte more is refused, with a message naming the size, the limit and
// (the first 64 bytes of) the key.
func TestTooLargeEdges(t *testing.T) {
	t.Parallel()
	rec := func(key string, v int) *intentlog.Record {
		return &intentlog.Record{Key: []byte(key), Value: make([]byte, v)}
	}
	size := int64(len(appendRecord(nil, 0, rec("k1", 100))))
	l := openLog(t, "/log", Options{FS: vfs.NewMem(), MaxRecordBytes: size, MaxBatchBytes: batchHeaderLen + 2*size})
	defer l.Close()
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	ctx := context.Background()
	noErr(t, l.Append(ctx, testTopic, []*intentlog.Record{rec("k1", 100)}))
	long := strings.Repeat("x", 64) + "y"
	err := l.Append(ctx, testTopic, []*intentlog.Record{rec(long, 100-len(long)+3)})
	if want := fmt.Sprintf("record 0 (key %q) is %d bytes encoded, max %d", long[:64], size+1, size); !errors.Is(err, intentlog.ErrTooLarge) ||
		!strings.Contains(err.Error(), want) {
		t.Fatalf("a record one byte over: %v; want ErrTooLarge saying %q", err, want)
	}
	noErr(t, l.Append(ctx, testTopic, []*intentlog.Record{rec("k1", 100), rec("k2", 100)}))
	err = l.Append(ctx, testTopic, []*intentlog.Record{rec("k1", 100), rec("k2", 100), rec("", 0)})
	if !errors.Is(err, intentlog.ErrTooLarge) || !strings.Contains(err.Error(), fmt.Sprintf("more than the max batch of %d bytes", batchHeaderLen+2*size)) {
		t.Fatalf("an append over MaxBatchBytes: %v", err)
	}
	if _, end, _ := l.Bounds(ctx, testTopic, 0); end != 3 {
		t.Fatalf("end %d, want 3", end)
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	l := openLog(t, t.TempDir(), Options{NoSync: true})
	defer l.Close()
	ctx := context.Background()
	// Each character class's bounds: the first and last inside are
	// accepted, the neighbours outside rejected.
	for _, bad := range []string{"", ".", "..", "a/b", "../x", `a\b`, "a b", "#lock", "é", strings.Repeat("x", 250),
		"a`", "a{", "A@", "A[", "0/", "9:", "a,", "a^"} {
		if err := l.CreateTopic(ctx, bad, 1, intentlog.TopicOptions{}); err == nil || !strings.Contains(err.Error(), "invalid topic name") {
			t.Errorf("CreateTopic(%q): %v, want an invalid name error", bad, err)
		}
	}
	good := "aAzZ09._-" + strings.Repeat("x", 240)
	if err := l.CreateTopic(ctx, good, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatalf("CreateTopic(%q): %v", good, err)
	}
	for _, bad := range []string{"", "..", "g/h", "offsets/../x"} {
		if err := l.Commit(ctx, bad, good, map[int32]int64{0: 1}); err == nil || !strings.Contains(err.Error(), "invalid group name") {
			t.Errorf("Commit(group %q): %v, want an invalid name error", bad, err)
		}
	}
	if err := l.Commit(ctx, "g", good, map[int32]int64{1: 1}); err == nil {
		t.Errorf("Commit to partition 1 of 1: no error")
	}
}

func TestDirectoryLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLog(t, dir, Options{NoSync: true})
	if l2, err := Open(dir, Options{}); err == nil {
		_ = l2.Close()
		t.Fatal("second Open of the same directory succeeded")
	}
	noErr(t, l.Close())
	noErr(t, openLog(t, dir, Options{NoSync: true}).Close())
}

// TestTailingReaders runs readers concurrently with appenders over many
// small segments and checks what they see (run with -race).
func TestTailingReaders(t *testing.T) {
	t.Parallel()
	const writers, perWriter = 4, 60
	l := openLog(t, t.TempDir(), Options{SegmentBytes: 1024, IndexIntervalBytes: 128})
	defer l.Close()
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				key := fmt.Sprintf("w%d-%d", w, i)
				rec := &intentlog.Record{Key: []byte(key), Value: []byte("v:" + key)}
				if err := l.Append(ctx, testTopic, []*intentlog.Record{rec}); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	for range 3 {
		wg.Go(func() {
			r, err := l.NewReader(testTopic, 0, 0)
			if err != nil {
				t.Errorf("NewReader: %v", err)
				return
			}
			defer r.Close()
			for next := int64(0); next < writers*perWriter; {
				recs, err := r.Next(ctx)
				if err != nil {
					t.Errorf("Next at %d: %v", next, err)
					return
				}
				for _, rec := range recs {
					if rec.Offset != next || string(rec.Value) != "v:"+string(rec.Key) {
						t.Errorf("read %q=%q at %d, want offset %d", rec.Key, rec.Value, rec.Offset, next)
						return
					}
					next++
				}
			}
		})
	}
	wg.Wait()
}

// TestCloseWhileAppending: Close with appends in flight returns them
// ErrClosed and leaves no goroutine behind. Close comes once every appender
// has had an append acknowledged and the reader has read, so all of them
// are mid-stream, without relying on a sleep.
func TestCloseWhileAppending(t *testing.T) {
	const appenders = 16
	before := runtime.NumGoroutine()
	l := openLog(t, t.TempDir(), Options{})
	createTestTopic(t, l, 4, intentlog.TopicOptions{})
	r, err := l.NewReader(testTopic, 0, 0)
	noErr(t, err)
	var wg, running sync.WaitGroup
	running.Add(appenders + 1)
	errs := make(chan error, appenders+1)
	for w := range appenders {
		wg.Go(func() {
			for i := 0; ; i++ {
				rec := &intentlog.Record{Key: fmt.Appendf(nil, "%d-%d", w, i)}
				if err := l.Append(context.Background(), testTopic, []*intentlog.Record{rec}); err != nil {
					if i == 0 {
						running.Done()
					}
					errs <- err
					return
				}
				if i == 0 {
					running.Done()
				}
			}
		})
	}
	wg.Go(func() {
		for i := 0; ; i++ {
			_, err := r.Next(context.Background())
			if i == 0 {
				running.Done()
			}
			if err != nil {
				errs <- err
				return
			}
		}
	})
	running.Wait()
	noErr(t, l.Close())
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		n++
		if !errors.Is(err, intentlog.ErrClosed) {
			t.Errorf("after Close: %v, want ErrClosed", err)
		}
	}
	if n != appenders+1 {
		t.Errorf("%d appenders and readers ended with ErrClosed, want %d", n, appenders+1)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
