package pebble

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wail-cdc/wail/internal/store"
)

// lockedBuffer is a log destination for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records decodes the JSON log lines written so far.
func (b *lockedBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b.buf.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// TestFailureIsLogged: the operator learns of the failure from the store's
// logger (Options.Logger), once, at Error, with the failed operation and
// file and what to do; the failure keeps its first cause.
func TestFailureIsLogged(t *testing.T) {
	var logs lockedBuffer
	fs := openFaulty(t, Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	mustApply(t, fs.Store, mut("k", 1))
	fs.fault.arm(both(isWAL, isSync), syscall.EIO)
	err := within(t, 10*time.Second, "Apply", func() error {
		_, err := fs.Apply(t.Context(), "t", []store.Mutation{mut("k", 2)})
		return err
	})
	if !errors.Is(err, store.ErrStorage) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Apply on a failing WAL sync: %v, want store.ErrStorage wrapping EIO", err)
	}
	fs.failure.fail(errors.New("a later failure"))
	if got := fs.Failure(); !errors.Is(got, syscall.EIO) || strings.Contains(got.Error(), "later") {
		t.Errorf("Failure() = %v, want the first cause (EIO)", got)
	}

	var stopped []map[string]any
	for _, r := range logs.records(t) {
		if msg, _ := r["msg"].(string); strings.Contains(msg, "the store stopped") {
			stopped = append(stopped, r)
		}
	}
	if len(stopped) != 1 {
		t.Fatalf("%d log records of the failure, want 1: %v", len(stopped), stopped)
	}
	r := stopped[0]
	msg, _ := r["msg"].(string)
	cause, _ := r["err"].(string)
	if r["level"] != "ERROR" || !strings.Contains(msg, "must restart") || !strings.Contains(msg, "free space") {
		t.Errorf("failure record %v: want level ERROR, saying to restart and to free space", r)
	}
	if !strings.Contains(cause, "sync") || !strings.Contains(cause, ".log") || !strings.Contains(cause, syscall.EIO.Error()) {
		t.Errorf("failure record's err %q: want the operation (sync), the WAL file and the error", cause)
	}
}

// TestCommitters: a call hands its commit to an idle committer instead of
// starting a goroutine (a new one grows its stack to Pebble's depth on
// every call: BenchmarkApply); a committer without work exits, and Close
// ends the idle ones.
func TestCommitters(t *testing.T) {
	t.Run("reused", func(t *testing.T) {
		s := openT(t, "store", Options{FS: vfs.NewMem()})
		if err := s.CreateTable(t.Context(), "t"); err != nil {
			t.Fatal(err)
		}
		for v := range uint64(100) {
			mustApply(t, s, mut("k", v+1))
			// The committer that answered waits for committerIdle (10s)
			// before it exits: it is there for the next call.
			if s.committers.Load() < 1 {
				t.Fatalf("no committer left after call %d: the one that answered exited at once", v+1)
			}
		}
		// A committer that has just answered may not be back waiting when
		// the next call comes, so a few may start; not one per call.
		if n := s.committers.Load(); n < 1 || n > 10 {
			t.Errorf("%d committers after 101 calls one after the other, want 1 (a few at most)", n)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if n := s.committers.Load(); n != 0 {
			t.Errorf("%d committers still running after Close", n)
		}
	})
	t.Run("idle", func(t *testing.T) {
		s := openT(t, "store", Options{FS: vfs.NewMem()})
		defer s.Close()
		s.idle = 20 * time.Millisecond
		if err := s.CreateTable(t.Context(), "t"); err != nil {
			t.Fatal(err)
		}
		waitCommitters(t, s, "without work")
		mustApply(t, s, mut("k", 1)) // a new one
		waitCommitters(t, s, "without work again")
	})
}

func waitCommitters(t *testing.T, s *Store, when string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); s.committers.Load() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d committers still running 5s %s", s.committers.Load(), when)
		}
	}
}

// TestCleanClose: closing a working store is not a failure: Failed stays
// open, Failure nil, nothing is logged at Error, and the store's
// goroutines have ended when Close returns.
func TestCleanClose(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		var logs lockedBuffer
		s := openT(t, "store", Options{FS: vfs.NewMem(), NoSync: noSync, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
		if err := s.CreateTable(t.Context(), "t"); err != nil {
			t.Fatal(err)
		}
		mustApply(t, s, mut("k", 1))
		if err := s.Close(); err != nil {
			t.Fatalf("Close (NoSync %v): %v", noSync, err)
		}
		select {
		case <-s.Failed():
			t.Errorf("NoSync %v: Failed() is closed after a clean Close: %v", noSync, s.Failure())
		default:
		}
		if err := s.Failure(); err != nil {
			t.Errorf("NoSync %v: Failure() = %v after a clean Close", noSync, err)
		}
		for _, r := range logs.records(t) {
			if r["level"] == "ERROR" {
				t.Errorf("NoSync %v: logged at Error: %v", noSync, r)
			}
		}
	}
}

// TestFatalf: Pebble's Fatalf (an unrecoverable error) fails the store
// with the message and does not return (it panics; the store recovers the
// panic on its own calls).
func TestFatalf(t *testing.T) {
	var logs lockedBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	f := newFailure(log)
	var recovered any
	func() {
		defer func() { recovered = recover() }()
		slogLogger{l: log, f: f}.Fatalf("MANIFEST %s: %v", "000002", syscall.EIO)
		t.Error("Fatalf returned")
	}()
	want := "pebble: fatal: MANIFEST 000002: " + syscall.EIO.Error()
	if msg, _ := recovered.(string); msg != want {
		t.Errorf("Fatalf panicked with %v, want %q", recovered, want)
	}
	if err := f.failed(); !errors.Is(err, store.ErrStorage) || !strings.Contains(err.Error(), want) {
		t.Errorf("failure after Fatalf: %v, want store.ErrStorage with %q", err, want)
	}
	var fatal int
	for _, r := range logs.records(t) {
		if r["level"] == "ERROR" && r["fatal"] == true && strings.Contains(r["msg"].(string), "MANIFEST 000002") {
			fatal++
		}
	}
	if fatal != 1 {
		t.Errorf("%d fatal records logged, want 1: %v", fatal, logs.records(t))
	}
}
