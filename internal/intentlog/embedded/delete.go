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
// offsets) is renamed away atomically, then removed. Health no longer
// counts its partitions, and OnHealth is told when that changes it.
func (l *Log) DeleteTopic(ctx context.Context, name string) error {
	if err := l.deleteTopic(ctx, name); err != nil {
		return fmt.Errorf("embedded: delete topic %s: %w", name, err)
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
	if err := l.fs.Rename(dir, tomb); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if !l.opts.NoSync {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return err
		}
	}
	return l.fs.RemoveAll(tomb)
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
