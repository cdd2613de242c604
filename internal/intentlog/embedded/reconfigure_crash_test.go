package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// stepCrashFS counts the calls that change a MemFS (file writes, syncs,
// closes, renames, removals, directory syncs) once armed, and crashes it
// just before the at-th: img is what a reboot then finds.
type stepCrashFS struct {
	*vfs.MemFS
	mu    sync.Mutex
	armed bool
	n, at int
	img   *vfs.MemFS
	ops   []string
	torn  *rand.Rand // set: the crash keeps a torn prefix of unsynced bytes
}

func (c *stepCrashFS) step(op, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.armed || c.img != nil {
		return
	}
	c.n++
	c.ops = append(c.ops, op+" "+name)
	if c.n == c.at && c.torn != nil {
		c.img = c.MemFS.CrashTorn(c.torn)
	} else if c.n == c.at {
		c.img = c.MemFS.Crash()
	}
}

type stepCrashFile struct {
	vfs.File
	c    *stepCrashFS
	name string
}

func (c *stepCrashFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE) != 0 {
		c.step("open", name)
	}
	f, err := c.MemFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &stepCrashFile{File: f, c: c, name: name}, nil
}
func (c *stepCrashFS) Rename(o, n string) error { c.step("rename", o); return c.MemFS.Rename(o, n) }
func (c *stepCrashFS) Remove(name string) error { c.step("remove", name); return c.MemFS.Remove(name) }
func (c *stepCrashFS) RemoveAll(name string) error {
	c.step("removeall", name)
	return c.MemFS.RemoveAll(name)
}
func (c *stepCrashFS) SyncDir(dir string) error { c.step("syncdir", dir); return c.MemFS.SyncDir(dir) }
func (f *stepCrashFile) WriteAt(p []byte, off int64) (int, error) {
	f.c.step("write", f.name)
	return f.File.WriteAt(p, off)
}
func (f *stepCrashFile) Sync() error { f.c.step("sync", f.name); return f.File.Sync() }
func (f *stepCrashFile) Truncate(size int64) error {
	f.c.step("truncate", f.name)
	return f.File.Truncate(size)
}

// TestCreateTopicReconfigureCrash: a power loss at each step of the
// replacement of a topic's options (temporary meta file written, synced,
// renamed over meta, directory synced; then retention's deletions) leaves
// a log that opens, with the old options or the new ones, every retained
// record readable and no record lost that retention did not remove.
func TestCreateTopicReconfigureCrash(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	ctx := context.Background()
	for at := 1; ; at++ {
		clock := &fakeClock{}
		clock.ns.Store(t0)
		mem := vfs.NewMem()
		fsys := &stepCrashFS{MemFS: mem, at: at}
		opts := Options{FS: fsys, SegmentBytes: 1024, RetentionCheckInterval: -1, Now: clock.Now,
			Logger: slog.New(slog.DiscardHandler)}
		l := openLog(t, "/log", opts)
		createTestTopic(t, l, 1, intentlog.TopicOptions{})
		for i := range 30 {
			appendBatch(t, l, fmt.Sprintf("old-%02d", i), 1)
		}
		clock.Advance(2 * time.Hour)
		appendBatch(t, l, "new", 1)
		fsys.mu.Lock()
		fsys.armed = true
		fsys.mu.Unlock()
		cerr := l.CreateTopic(ctx, testTopic, 1, intentlog.TopicOptions{Retention: time.Hour})
		fsys.mu.Lock()
		img, ops := fsys.img, fsys.ops
		if img == nil { // CreateTopic returned: a crash now keeps the new options
			noErr(t, cerr)
			img = mem.Crash()
			ops = append(ops, "nothing (CreateTopic returned)")
		}
		fsys.mu.Unlock()
		_ = l.Close()
		last := fsys.img == nil
		t.Run(fmt.Sprintf("before %s", ops[len(ops)-1]), func(t *testing.T) {
			opts.FS = img
			l2, err := Open("/log", opts)
			if err != nil {
				t.Fatalf("reopen after a crash at step %d (%v): %v", at, ops, err)
			}
			defer l2.Close()
			m, err := readMeta(img, "/log/"+testTopic)
			if err != nil || (m.RetentionNanos != 0 && time.Duration(m.RetentionNanos) != time.Hour) || m.Partitions != 1 {
				t.Fatalf("meta after the crash: %+v, %v; want the old options or the new ones", m, err)
			}
			if last && time.Duration(m.RetentionNanos) != time.Hour {
				t.Fatalf("meta after a crash once CreateTopic returned: %+v; want the new retention (1h)", m)
			}
			s, e, err := l2.Bounds(ctx, testTopic, 0)
			if err != nil || e != 31 {
				t.Fatalf("bounds after the crash: [%d, %d), %v; want end 31", s, e, err)
			}
			r, err := l2.NewReader(testTopic, 0, s)
			noErr(t, err)
			defer r.Close()
			for off := s; off < e; {
				recs, err := r.Next(ctx)
				if err != nil || len(recs) == 0 {
					t.Fatalf("records at %d: %v", off, err)
				}
				for _, rec := range recs {
					if rec.Offset != off {
						t.Fatalf("record at %d has offset %d", off, rec.Offset)
					}
					off++
				}
			}
		})
		if last {
			if at < 6 {
				t.Fatalf("only %d mutating calls: %v", at-1, ops)
			}
			return
		}
	}
}
