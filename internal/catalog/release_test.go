package catalog

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestReleaseTopicsOnlyItsOwn: ReleaseTopics deletes a table's topics
// only while this process's note says it made them for that very table
// (not for a table of the name made here since, nor for none), forgets
// the note once they are deleted, and keeps it when the deletion fails
// (a later release deletes them).
func TestReleaseTopicsOnlyItsOwn(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	old, later := Table{Name: "t", CreatedAt: t0}, Table{Name: "t", CreatedAt: t0.Add(time.Second)}
	fail := errors.New("log down")
	for _, tc := range []struct {
		name    string
		made    []Table // noted made here, in order
		release Table
		delErr  error
		deleted bool
		note    *Table // the note left
	}{
		{"made here", []Table{old}, old, nil, true, nil},
		{"a table of the name made here since", []Table{old, later}, old, nil, false, &later},
		{"an earlier table of the name made here", []Table{old}, later, nil, false, &old},
		{"never made here", nil, old, nil, false, nil},
		{"another name made here", []Table{{Name: "u", CreatedAt: t0}}, old, nil, false, nil},
		{"the deletion fails", []Table{old}, old, fail, true, &old},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := openCatalog(t, openStore(t), newTopics())
			for _, m := range tc.made {
				c.madeFor(m)
			}
			deleted := false
			err := c.ReleaseTopics(t.Context(), tc.release, func(context.Context) error { deleted = true; return tc.delErr })
			if !errors.Is(err, tc.delErr) || (tc.delErr == nil) != (err == nil) {
				t.Fatalf("ReleaseTopics: %v, want %v", err, tc.delErr)
			}
			if deleted != tc.deleted {
				t.Fatalf("deleted %v, want %v", deleted, tc.deleted)
			}
			c.makingMu.Lock()
			note, ok := c.made["t"]
			c.makingMu.Unlock()
			if ok != (tc.note != nil) || ok && !note.CreatedAt.Equal(tc.note.CreatedAt) {
				t.Fatalf("note left %+v (%v), want %+v", note, ok, tc.note)
			}
			if !tc.deleted || tc.delErr != nil {
				return
			}
			again := false
			if err := c.ReleaseTopics(t.Context(), tc.release, func(context.Context) error { again = true; return nil }); err != nil || again {
				t.Fatalf("released again: %v, deleted again %v; want nothing deleted", err, again)
			}
		})
	}
}

// TestReleaseTopicsWaitsForMakings: a release waits for the makings of
// its name's topics here (the topic lock), deleting nothing when its
// context ends first.
func TestReleaseTopicsWaitsForMakings(t *testing.T) {
	t.Parallel()
	c := openCatalog(t, openStore(t), newTopics())
	tb := Table{Name: "t", CreatedAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	c.madeFor(tb)
	if err := c.topicLocks.acquire(t.Context(), "t", false); err != nil { // a making of the name
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	deleted := false
	del := func(context.Context) error { deleted = true; return nil }
	if err := c.ReleaseTopics(short, tb, del); !errors.Is(err, context.DeadlineExceeded) || deleted {
		t.Fatalf("a release while a making holds the name: %v, deleted %v; want the deadline, nothing deleted", err, deleted)
	}
	c.topicLocks.release("t", false)
	if err := c.ReleaseTopics(t.Context(), tb, del); err != nil || !deleted {
		t.Fatalf("once the making ended: %v, deleted %v", err, deleted)
	}
}

// TestRunReleases: each table a refresh found dropped is released; a
// failure is returned with the table's name and leaves its note (this
// process still holds the topics), a success forgets it; without
// Options.Release nothing runs.
func TestRunReleases(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	a, b := Table{Name: "a", CreatedAt: t0}, Table{Name: "b", CreatedAt: t0}
	fail := errors.New("log down")
	var released []string
	c := openCatalog(t, openStore(t), newTopics(), func(o *Options) {
		o.Release = func(_ context.Context, tb Table) error {
			released = append(released, tb.Name)
			if tb.Name == "a" {
				return fail
			}
			return nil
		}
	})
	c.madeFor(a)
	c.madeFor(b)
	errs := c.runReleases(t.Context(), []Table{a, b})
	if len(released) != 2 || len(errs) != 1 || !errors.Is(errs[0], fail) || !strings.Contains(errs[0].Error(), "table a ") {
		t.Fatalf("released %v, errors %v; want a and b, one error of a's", released, errs)
	}
	c.makingMu.Lock()
	_, aNoted := c.made["a"]
	_, bNoted := c.made["b"]
	c.makingMu.Unlock()
	if !aNoted || bNoted {
		t.Fatalf("notes: a %v, b %v; want a's kept (its release failed), b's forgotten", aNoted, bNoted)
	}

	none := openCatalog(t, openStore(t), newTopics())
	none.madeFor(a)
	if errs := none.runReleases(t.Context(), []Table{a}); errs != nil {
		t.Fatalf("without Options.Release: %v", errs)
	}
}

// TestAwaitReleases: a making waits for the releases of its name that
// run (every one of them), not for other names', and stops waiting at
// its context's end; once all ended nothing of the name is kept. Without
// Options.Release nothing is registered.
func TestAwaitReleases(t *testing.T) {
	t.Parallel()
	c := openCatalog(t, openStore(t), newTopics(), func(o *Options) {
		o.Release = func(context.Context, Table) error { return nil }
	})
	ctx := t.Context()
	end1 := c.releasesBegin([]Table{{Name: "t"}})
	end2 := c.releasesBegin([]Table{{Name: "t"}, {Name: "u"}})
	if err := c.awaitReleases(ctx, "v"); err != nil {
		t.Fatalf("another name: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := c.awaitReleases(short, "t"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("while releases of the name run: %v, want the deadline", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- c.awaitReleases(ctx, "t") }()
	end1()
	select {
	case err := <-waited:
		t.Fatalf("returned (%v) while a release of the name still runs", err)
	case <-time.After(50 * time.Millisecond):
	}
	end2()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting once every release of the name ended")
	}
	c.makingMu.Lock()
	left := len(c.releasing)
	c.makingMu.Unlock()
	if left != 0 {
		t.Fatalf("every release ended and %d names are kept", left)
	}

	none := openCatalog(t, openStore(t), newTopics())
	defer none.releasesBegin([]Table{{Name: "t"}})()
	if err := none.awaitReleases(short, "t"); err != nil {
		t.Fatalf("without Options.Release a making waited: %v", err)
	}
	defer c.releasesBegin(nil)()
	if err := c.awaitReleases(short, "t"); err != nil {
		t.Fatalf("no release begun: %v", err)
	}
}

// TestReleaseEarlier: before a making of t's topics here, the topics this
// process made for an earlier table of the name are released, only once
// the store no longer holds that table (t may be stale: the earlier one
// is then the live table of the name); what cannot be read, a damaged
// entry or a failed release makes the making fail and keeps the note.
func TestReleaseEarlier(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	table := func(at time.Time) Table {
		return Table{Name: "t", FailureMode: Transactional, Partitions: 2, State: Ready, CreatedAt: at}
	}
	old, now := table(t0), table(t0.Add(time.Second))
	fail := errors.New("log down")
	damaged := []byte{0xff, 0xff, 0xff}
	for _, tc := range []struct {
		name       string
		note       *Table // made here
		stored     any    // the store's entry of the name: nil, a Table or bytes
		making     Table
		noRelease  bool // Options.Release nil
		unreadable bool
		releaseErr error
		released   bool
		err        string // in the error
		noteLeft   bool
	}{
		{name: "nothing made here", stored: now, making: now},
		{name: "made here for the making's table", note: &now, stored: now, making: now, noteLeft: true},
		{name: "the earlier table gone", note: &old, making: now, released: true},
		{name: "the store holds the making's table", note: &old, stored: now, making: now, released: true},
		{name: "a stale making: the store holds the table made here", note: &now, stored: now, making: old, noteLeft: true},
		{name: "the store unreadable", note: &old, stored: now, making: now, unreadable: true, err: "reading the entry of the name: store down", noteLeft: true},
		{name: "the entry damaged", note: &old, stored: damaged, making: now, err: "reading the entry of the name", noteLeft: true},
		{name: "the release fails", note: &old, making: now, releaseErr: fail, released: true, err: "log down", noteLeft: true},
		{name: "no releases here", note: &old, making: now, noRelease: true, noteLeft: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			st := &failingTables{Backend: openStore(t)}
			var released []Table
			c := openCatalog(t, st, newTopics(), func(o *Options) {
				if !tc.noRelease {
					o.Release = func(_ context.Context, tb Table) error {
						released = append(released, tb)
						return tc.releaseErr
					}
				}
			})
			var spec []byte // saved once the catalog is open: it would make the table's topics at Open
			switch s := tc.stored.(type) {
			case Table:
				var err error
				if spec, err = s.encode(); err != nil {
					t.Fatal(err)
				}
			case []byte:
				spec = s
			}
			if spec != nil {
				if _, ok, err := st.SwapTable(ctx, "t", nil, spec); err != nil || !ok {
					t.Fatalf("saving the entry: %v %v", ok, err)
				}
			}
			if tc.note != nil {
				c.madeFor(*tc.note)
			}
			st.fail = tc.unreadable
			err := c.releaseEarlier(ctx, tc.making)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("releaseEarlier: %v, want an error with %q", err, tc.err)
			}
			if tc.releaseErr != nil && !errors.Is(err, tc.releaseErr) {
				t.Fatalf("releaseEarlier: %v, want the release's error", err)
			}
			if got := len(released) == 1 && released[0].CreatedAt.Equal(old.CreatedAt); got != tc.released || len(released) > 1 {
				t.Fatalf("released %+v, want the earlier table released: %v", released, tc.released)
			}
			c.makingMu.Lock()
			_, noted := c.made["t"]
			c.makingMu.Unlock()
			if noted != tc.noteLeft {
				t.Fatalf("note left %v, want %v", noted, tc.noteLeft)
			}
		})
	}
}

// TestReleaseEarlierWaitsForTheRefresh: a making waits first for the
// refresh's release of the name running here (which may release the
// earlier table), failing at its context's end.
func TestReleaseEarlierWaitsForTheRefresh(t *testing.T) {
	t.Parallel()
	c := openCatalog(t, openStore(t), newTopics(), func(o *Options) {
		o.Release = func(context.Context, Table) error { return nil }
	})
	defer c.releasesBegin([]Table{{Name: "t"}})()
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := c.releaseEarlier(short, Table{Name: "t"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a making while a release of its name runs: %v, want the deadline", err)
	}
}
