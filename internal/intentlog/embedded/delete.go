package embedded

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// deletedPrefix starts the name a deleted topic's directory is renamed to
// before it is removed: never a valid topic name, so Open does not load a
// topic whose removal a crash interrupted, and removes it instead.
const deletedPrefix = "#deleted-"

// errDeleted is what appends, reads and commits of a deleted topic fail
// with.
var errDeleted = fmt.Errorf("topic deleted: %w", intentlog.ErrUnknownTopic)

// closedErr is the error of an operation on a closed partition: errDeleted
// when its topic was deleted, else ErrClosed.
func (p *partition) closedErr() error {
	if p.deleted.Load() {
		return errDeleted
	}
	return intentlog.ErrClosed
}

// DeleteTopic implements intentlog.TopicDeleter. Queued appends fail, the
// writers stop, blocked readers wake with an error wrapping
// ErrUnknownTopic, and the topic's directory (segments and committed
// offsets) is renamed away atomically, then removed (what a deletion that
// failed after the rename left, the next DeleteTopic of the name or Open
// removes). Health no longer counts its partitions, and OnHealth is told
// when that changes it.
func (l *Log) DeleteTopic(ctx context.Context, name string) error {
	if err := l.deleteTopic(ctx, name); err != nil {
		return fmt.Errorf("embedded: delete topic %s: %w", name, fileErr(err))
	}
	return nil
}

func (l *Log) deleteTopic(ctx context.Context, name string) error {
	if err := validateName("topic", name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	l.createMu.Lock()
	defer l.createMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return intentlog.ErrClosed
	}
	t, ok := l.topics[name]
	delete(l.topics, name)
	l.mu.Unlock()
	if ok {
		t.stop()
		// Its partitions' conditions (a full disk) went with it.
		l.reportHealth()
	}
	// An interrupted creation (no meta) is removed the same way.
	dir := filepath.Join(l.dir, name)
	tomb := filepath.Join(l.dir, deletedPrefix+name+"-"+strconv.FormatInt(time.Now().UnixNano(), 10))
	if ok {
		t.offIO.Lock() // no offsets file is being written
		defer t.offIO.Unlock()
		t.offMu.Lock()
		defer t.offMu.Unlock()
		t.deleted = true
	}
	if err := l.fs.Rename(dir, tomb); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// This deletion's directory, and any an earlier deletion of the name
	// left when its directory sync or removal failed (tried again, it
	// finds the topic gone).
	return l.removeTombs(name)
}

// removeTombs removes the renamed directories of name's deletions, once
// their renames are durable.
func (l *Log) removeTombs(name string) error {
	ents, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return err
	}
	var tombs []string
	for _, e := range ents {
		if e.IsDir() && isTombOf(e.Name(), name) {
			tombs = append(tombs, filepath.Join(l.dir, e.Name()))
		}
	}
	if len(tombs) == 0 {
		return nil
	}
	if !l.opts.NoSync {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return err
		}
	}
	var errs []error
	for _, tomb := range tombs {
		errs = append(errs, l.fs.RemoveAll(tomb))
	}
	return errors.Join(errs...)
}

// isTombOf reports whether entry is the renamed directory of a deletion
// of topic name: deletedPrefix, name, '-' and digits (a name may hold
// '-', so a prefix match alone could take another topic's).
func isTombOf(entry, name string) bool {
	rest, ok := strings.CutPrefix(entry, deletedPrefix+name+"-")
	if !ok || rest == "" {
		return false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// stop ends a deleted topic's partitions: appends fail, the writers stop,
// readers wake, files close.
func (t *topic) stop() {
	for _, p := range t.parts {
		p.deleted.Store(true)
		p.shutdown()
	}
	for _, p := range t.parts {
		<-p.exited
		_ = p.closeFiles()
		p.mu.Lock()
		close(p.notify) // blocked readers see closed and fail with errDeleted
		p.notify = make(chan struct{})
		p.mu.Unlock()
	}
}

// removeDeleted removes what deletions that a crash interrupted left.
func (l *Log) removeDeleted(ents []os.DirEntry) {
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), deletedPrefix) {
			if err := l.fs.RemoveAll(filepath.Join(l.dir, e.Name())); err != nil {
				l.opts.Logger.Warn("embedded: cannot remove a deleted topic's directory; remove it by hand", "dir", e.Name(), "err", err)
			}
		}
	}
}
