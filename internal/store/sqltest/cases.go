package sqltest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// testLevels: the replicas come first, the primary last; a Get at a level
// out of range fails.
func testLevels[S Store](t *testing.T, c Config[S]) {
	for _, replicas := range []int{0, c.Replicas} {
		t.Run(fmt.Sprintf("replicas=%d", replicas), func(t *testing.T) {
			t.Parallel()
			s := c.fresh(t, replicas)
			var want []string
			for i := range replicas {
				want = append(want, fmt.Sprintf("replica-%d", i))
			}
			want = append(want, "primary")
			if got := s.Levels(); !slices.Equal(got, want) {
				t.Errorf("Levels() = %v, want %v", got, want)
			}
			for _, l := range []store.Level{-1, store.Level(len(want))} {
				if _, _, err := s.Get(t.Context(), "x", []byte("k"), l); err == nil {
					t.Errorf("Get at level %d succeeded", l)
				}
			}
		})
	}
}

// testInjection: names that would break out of an identifier quoted with
// backticks (MySQL) or double quotes (PostgreSQL) are refused before any
// SQL is built, and nothing was dropped.
func testInjection[S Store](t *testing.T, c Config[S]) {
	s := c.fresh(t, 0)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "victim"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"x`; DROP TABLE wail_victim; --",
		`x"; DROP TABLE wail_victim; --`,
		"victim; DROP TABLE wail__catalog",
		"x` (k int); --",
		`x" (key bytea); --`,
		"victim\x00",
		"Victim",
		"../victim",
	} {
		if err := s.CreateTable(ctx, name); err == nil {
			t.Errorf("CreateTable(%q) succeeded", name)
		}
		if err := s.SaveTable(ctx, store.Table{Name: name}); err == nil {
			t.Errorf("SaveTable(%q) succeeded", name)
		}
		if _, err := s.Apply(ctx, name, []store.Mutation{{Key: []byte("k"), Version: 1}}); !errors.Is(err, store.ErrUnknownTable) {
			t.Errorf("Apply(%q): %v, want ErrUnknownTable", name, err)
		}
		if _, _, err := s.Get(ctx, name, []byte("k"), 0); !errors.Is(err, store.ErrUnknownTable) {
			t.Errorf("Get(%q): %v, want ErrUnknownTable", name, err)
		}
	}
	if _, err := s.Apply(ctx, "victim", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}}); err != nil {
		t.Errorf("victim table is gone: %v", err)
	}
	if err := s.Check(ctx); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// testLongNames: names too long for wail_<name> within the database's
// identifiers (which MySQL rejects and PostgreSQL truncates, to a prefix
// they share) are still different tables.
func testLongNames[S Store](t *testing.T, c Config[S]) {
	s := c.fresh(t, 0)
	ctx := t.Context()
	base := strings.Repeat("n", c.MaxIdent-len(sqlstore.RowPrefix))
	names := []string{base, base + "a", base + "b", strings.Repeat("n", 63)}
	for i, name := range names {
		if err := s.CreateTable(ctx, name); err != nil {
			t.Fatalf("CreateTable(%d chars): %v", len(name), err)
		}
		if _, err := s.Apply(ctx, name, []store.Mutation{{Key: []byte("k"), Value: []byte(name), Version: uint64(i + 1)}}); err != nil {
			t.Fatal(err)
		}
	}
	for i, name := range names {
		row, found, err := s.Get(ctx, name, []byte("k"), 0)
		if err != nil || !found || row.Version != uint64(i+1) || string(row.Value) != name {
			t.Errorf("table %d (%d chars): %+v found=%v err=%v", i, len(name), row, found, err)
		}
	}
}

// testCurrent: a write that loses reports the stored version, and a
// version that does not fit the signed column is refused.
func testCurrent[S Store](t *testing.T, c Config[S]) {
	s := c.fresh(t, 0)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "cur"); err != nil {
		t.Fatal(err)
	}
	put := func(k string, v uint64) store.Mutation {
		return store.Mutation{Key: []byte(k), Value: []byte("v"), Version: v}
	}
	if _, err := s.Apply(ctx, "cur", []store.Mutation{put("a", 10), put("b", 20)}); err != nil {
		t.Fatal(err)
	}
	out, err := s.Apply(ctx, "cur", []store.Mutation{put("a", 5), put("b", 21), put("a", 7), put("c", 1)})
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Outcome{{Current: 10}, {Applied: true, Current: 21}, {Current: 10}, {Applied: true, Current: 1}}
	for i := range want {
		if out[i] != want[i] {
			t.Errorf("outcome %d = %+v, want %+v", i, out[i], want[i])
		}
	}
	if _, err := s.Apply(ctx, "cur", []store.Mutation{put("x", 1<<63)}); err == nil {
		t.Error("version 2^63 was accepted")
	}
	// Version 0 is greater than nothing: a write of an absent key at 0
	// is applied (MySQL tells it from the versions read before and after
	// the write, an absent row's being -1), and one more at 0 is not.
	for i, applied := range []bool{true, false} {
		out, err := s.Apply(ctx, "cur", []store.Mutation{put("z", 0)})
		if err != nil {
			t.Fatal(err)
		}
		if out[0] != (store.Outcome{Applied: applied}) {
			t.Errorf("write %d of absent key z at version 0: %+v, want applied %v", i+1, out[0], applied)
		}
	}
	if row, found, err := s.Get(ctx, "cur", []byte("z"), 0); err != nil || !found || row.Version != 0 {
		t.Errorf("z after its write at version 0: %+v, found %v, %v", row, found, err)
	}
}

// testClosed: after Close, with a replica, Check and ReplicaLag fail with
// store.ErrClosed too (storetest.Run checks the store.Store operations).
func testClosed[S Store](t *testing.T, c Config[S]) {
	s := c.fresh(t, 1)
	ctx := t.Context()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Check after Close: %v, want ErrClosed", err)
	}
	if l, ok := any(s).(lagger); ok {
		if _, err := l.ReplicaLag(ctx); !errors.Is(err, store.ErrClosed) {
			t.Errorf("ReplicaLag after Close: %v, want ErrClosed", err)
		}
	}
}

// testUnavailable: a primary or a replica that refuses connections or
// never answers is store.ErrUnavailable within the query timeout; the
// caller's own cancellation is not.
func testUnavailable[S Store](t *testing.T, c Config[S]) {
	const timeout = 500 * time.Millisecond
	for name, addr := range map[string]func(testing.TB) string{"refused": ClosedAddr, "silent": SilentAddr} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			dead := addr(t)
			start := time.Now()
			s, err := c.Open(ctx, c.DSN(dead), nil, timeout)
			if err == nil {
				_ = s.Close()
			}
			if !errors.Is(err, store.ErrUnavailable) || time.Since(start) > 3*time.Second {
				t.Errorf("Open: %v after %v, want ErrUnavailable within 3s", err, time.Since(start))
			}

			dsn, _ := c.Fresh(t, 0)
			s = c.open(t, dsn, []string{c.DSN(dead)}, timeout)
			if err := s.CreateTable(ctx, "u"); err != nil {
				t.Fatal(err)
			}
			start = time.Now()
			if _, _, err := s.Get(ctx, "u", []byte("k"), 0); !errors.Is(err, store.ErrUnavailable) || time.Since(start) > 3*time.Second {
				t.Errorf("Get at the dead replica: %v after %v, want ErrUnavailable within 3s", err, time.Since(start))
			}
			if _, found, err := s.Get(ctx, "u", []byte("k"), 1); err != nil || found {
				t.Errorf("Get at the primary: found=%v err=%v", found, err)
			}
			if l, ok := any(s).(lagger); ok {
				if _, err := l.ReplicaLag(ctx); !errors.Is(err, store.ErrUnavailable) {
					t.Errorf("ReplicaLag: %v, want ErrUnavailable", err)
				}
			}
			if err := s.Check(ctx); !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("Check: %v, want ErrUnavailable", err)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		s := c.fresh(t, 0)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, _, err := s.Get(ctx, "x", []byte("k"), 0); err == nil || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Get with a cancelled context: %v, want an error that is not ErrUnavailable", err)
		}
	})
}
