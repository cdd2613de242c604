package embedded

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/wail-cdc/wail/internal/vfs"
)

// Durable sync rounds (Options.SyncFilesystem).
//
// By default every partition writer fsyncs its own segment after each
// batch. With SyncFilesystem, a writer instead writes its batch, then asks
// the log's syncer to make it durable and waits. The syncer runs rounds: it
// takes every request queued (each for a batch whose write has returned),
// makes them all durable with one syncfs(2) of the log's filesystem, and
// answers them all with the round's result. Requests that arrive during a
// round wait for the next one, so the batches of every partition of every
// topic share one call, where an fsync per file costs nearly as much each.
// syncfs also writes back every other dirty file of that filesystem, so a
// round lasts as long as the whole filesystem's write-back: worth it on a
// volume of wail's own, not on one shared with a busy database.
//
// Failure: when a round's syncfs fails, every request of the round gets
// the error, and each partition whose batch was in it breaks as after a
// failed fsync (partition.commit): its batch is cut off, readers never saw
// it, and the partition refuses appends until the log is reopened. A failed
// syncfs cannot tell which file lost pages, and it reports a write-back
// error only once, possibly to a round before the one whose pages were
// lost, so after one the syncer fails every later round too: every
// partition breaks at its next append, and wail must restart.
type syncer struct {
	fss vfs.FilesystemSync

	mu      sync.Mutex
	queue   []*syncReq
	failed  error // a syncfs failed: every later round fails
	wake    chan struct{}
	stop    chan struct{}
	stopped chan struct{}

	// testHookRound, if set, runs before each round takes the queue.
	testHookRound atomic.Pointer[func()]
}

// syncReq is one partition's batch waiting to be durable in f.
type syncReq struct {
	f    vfs.File
	done chan struct{}
	err  error
}

// newSyncer starts a syncer whose rounds call fss.Sync.
func newSyncer(fss vfs.FilesystemSync) *syncer {
	s := &syncer{fss: fss, wake: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	go s.run()
	return s
}

// openFilesystemSync returns a handle for one syncfs per round, or nil
// when fsys cannot (vfs.ErrFilesystemSyncUnsupported): then each writer
// fsyncs its own file.
func openFilesystemSync(fsys vfs.FS, dir string) (vfs.FilesystemSync, error) {
	fss, ok := fsys.(vfs.FilesystemSyncer)
	if !ok {
		return nil, fmt.Errorf("syncfs %s: %w", dir, vfs.ErrFilesystemSyncUnsupported)
	}
	return fss.OpenFilesystemSync(dir)
}

// sync makes the bytes written to f so far durable, in the next round.
func (s *syncer) sync(f vfs.File) error {
	r := &syncReq{f: f, done: make(chan struct{})}
	s.mu.Lock()
	s.queue = append(s.queue, r)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	<-r.done
	return r.err
}

// run runs rounds until close. Writers stop before the syncer does, so no
// request waits for a stopped syncer.
func (s *syncer) run() {
	defer close(s.stopped)
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
		}
		for {
			if hook := s.testHookRound.Load(); hook != nil {
				(*hook)()
			}
			s.mu.Lock()
			reqs := s.queue
			s.queue = nil
			s.mu.Unlock()
			if len(reqs) == 0 {
				break
			}
			err := s.round()
			for _, r := range reqs {
				r.err = err
				close(r.done)
			}
		}
	}
}

// queued returns how many requests wait for the next round.
func (s *syncer) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// round makes every batch written before it durable and returns the
// round's result.
func (s *syncer) round() error {
	if s.failed != nil {
		return fmt.Errorf("an earlier syncfs failed, nothing written since can be trusted: %w", s.failed)
	}
	if err := s.fss.Sync(); err != nil {
		s.failed = err
		return err
	}
	return nil
}

// close stops the syncer once the writers have stopped, and releases the
// filesystem handle.
func (s *syncer) close() error {
	close(s.stop)
	<-s.stopped
	return s.fss.Close()
}
