package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// dirOpsFS wraps an FS: it holds the first operation a gate matches (see
// gate), and records every operation made once closed is set.
type dirOpsFS struct {
	vfs.FS
	g      *gate
	closed atomic.Bool
	mu     sync.Mutex
	late   []string
}

func (d *dirOpsFS) op(op vfs.Op, name string) {
	if d.closed.Load() {
		d.mu.Lock()
		d.late = append(d.late, op.String()+" "+name)
		d.mu.Unlock()
	}
	d.g.hold(op, name)
}

func (d *dirOpsFS) lateOps() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.late
}

func (d *dirOpsFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	d.op(vfs.OpOpen, name)
	return d.FS.OpenFile(name, flag, perm)
}

func (d *dirOpsFS) Remove(name string) error { d.op(vfs.OpRemove, name); return d.FS.Remove(name) }

func (d *dirOpsFS) RemoveAll(name string) error {
	d.op(vfs.OpRemove, name)
	return d.FS.RemoveAll(name)
}

func (d *dirOpsFS) Rename(oldname, newname string) error {
	d.op(vfs.OpRename, oldname)
	return d.FS.Rename(oldname, newname)
}

func (d *dirOpsFS) MkdirAll(dir string, perm os.FileMode) error {
	d.op(vfs.OpMkdir, dir)
	return d.FS.MkdirAll(dir, perm)
}

func (d *dirOpsFS) ReadDir(dir string) ([]os.DirEntry, error) {
	d.op(vfs.OpReadDir, dir)
	return d.FS.ReadDir(dir)
}

func (d *dirOpsFS) SyncDir(dir string) error { d.op(vfs.OpSyncDir, dir); return d.FS.SyncDir(dir) }

// TestCloseWaitsForCreateAndDelete: Close called while CreateTopic or
// DeleteTopic is in its file operations waits for it to finish: no file
// of the log is touched once Close returned (it released the directory
// lock: another process may have opened the log by then), the operation
// completes, and a reopen finds what it made (the topic created, or gone
// without a leftover).
func TestCloseWaitsForCreateAndDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		hold  func(op vfs.Op, name string) bool
		run   func(l *Log) error
		exist bool // the topic exists after
	}{
		{"create", func(op vfs.Op, name string) bool { return op == vfs.OpOpen && filepath.Base(name) == "#meta.tmp" },
			func(l *Log) error { return l.CreateTopic(ctx, testTopic, 2, intentlog.TopicOptions{}) }, true},
		{"delete", func(op vfs.Op, name string) bool { return op == vfs.OpRename && name == "/log/"+testTopic },
			func(l *Log) error { return l.DeleteTopic(ctx, testTopic) }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			mem := vfs.NewMem()
			dfs := &dirOpsFS{FS: mem, g: newGate()}
			l := openLog(t, "/log", Options{FS: dfs})
			if !c.exist {
				createTestTopic(t, l, 2, intentlog.TopicOptions{})
			}
			dfs.g.arm(c.hold)
			opDone := make(chan error, 1)
			go func() { opDone <- c.run(l) }()
			dfs.g.await(t)
			closeDone := make(chan error, 1)
			go func() {
				err := l.Close()
				dfs.closed.Store(true)
				closeDone <- err
			}()
			// A Close that does not wait returns now (MemFS: at once).
			// One that waits is let go by the operation's release.
			select {
			case err := <-closeDone:
				closeDone <- err
			case <-time.After(100 * time.Millisecond):
			}
			close(dfs.g.release)
			if err := <-opDone; err != nil {
				t.Errorf("%s during Close: %v", c.name, err)
			}
			noErr(t, <-closeDone)
			if late := dfs.lateOps(); len(late) > 0 {
				t.Fatalf("file operations after Close returned: %q", late)
			}
			l = openLog(t, "/log", Options{FS: mem})
			defer l.Close()
			n, err := l.Partitions(ctx, testTopic)
			if c.exist && (err != nil || n != 2) || !c.exist && !errors.Is(err, intentlog.ErrUnknownTopic) {
				t.Fatalf("after reopening: %d partitions, %v", n, err)
			}
			ents, err := mem.ReadDir("/log")
			noErr(t, err)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if want := fmt.Sprint(map[bool][]string{true: {"#lock", testTopic}, false: {"#lock"}}[c.exist]); fmt.Sprint(names) != want {
				t.Fatalf("log directory holds %v, want %v", names, want)
			}
		})
	}
}

// TestCreateDeleteAfterClose: CreateTopic and DeleteTopic after Close fail
// with ErrClosed and touch no file.
func TestCreateDeleteAfterClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dfs := &dirOpsFS{FS: vfs.NewMem(), g: newGate()}
	l := openLog(t, "/log", Options{FS: dfs})
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	noErr(t, l.Close())
	dfs.closed.Store(true)
	if err := l.CreateTopic(ctx, "u", 1, intentlog.TopicOptions{}); !errors.Is(err, intentlog.ErrClosed) {
		t.Errorf("CreateTopic after Close: %v", err)
	}
	if err := l.DeleteTopic(ctx, testTopic); !errors.Is(err, intentlog.ErrClosed) {
		t.Errorf("DeleteTopic after Close: %v", err)
	}
	if late := dfs.lateOps(); len(late) > 0 {
		t.Fatalf("file operations after Close returned: %q", late)
	}
}
