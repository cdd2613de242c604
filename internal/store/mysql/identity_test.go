package mysql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestReplicaNotOurs: a replica DSN whose reads do not show the primary's
// rows is refused at Open, with an error that says what differs and what
// to fix: another database of the primary's server (one that holds no
// wail tables, or another wail store's, made by a store of its own).
// Reads from it served rows the primary never had, or missed the ones it
// has. (Another server cannot be tested here, with one MariaDB:
// TestReplicaChangesIdentity changes the identity the store compares
// with instead.)
func TestReplicaNotOurs(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	empty, _ := freshDSNs(t, 0)
	other, _ := freshDSNs(t, 0)
	o, err := Open(context.Background(), Options{DSN: other, Logger: quiet})
	o = sqltest.Closing(t, o, err)
	if err := o.CreateTable(t.Context(), "id"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, replica, want string }{
		{"another database", empty, "database"},
		{"another wail database", other, "identity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), Options{DSN: dsn, ReplicaDSNs: []string{tc.replica}, Logger: quiet})
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open with a replica DSN of %s: no error; want it refused", tc.name)
			}
			if msg := err.Error(); !strings.Contains(msg, "replica-0") || !strings.Contains(msg, tc.want) || !strings.Contains(msg, "replica DSN") {
				t.Fatalf("Open with a replica DSN of %s: %v; want an error naming replica-0, the %s and the replica DSN to fix", tc.name, err, tc.want)
			}
			t.Logf("%s: %v", tc.name, err)
		})
	}
}

// countHandler counts the records logged at error level.
type countHandler struct {
	slog.Handler
	errors *atomic.Int32
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h countHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.errors.Add(1)
	}
	return nil
}

// versionAt reads key's version at level (0 when not found).
func versionAt(t *testing.T, s *Store, table, key string, level store.Level) uint64 {
	t.Helper()
	row, found, err := s.Get(t.Context(), table, []byte(key), level)
	if err != nil {
		t.Fatalf("Get at level %d: %v", level, err)
	}
	if !found {
		return 0
	}
	return row.Version
}

// TestReplicaChangesIdentity: a replica whose new connections stop
// showing the primary's rows (here: the primary's identity the store
// compares with is changed, as another server behind the same DSN would
// be) is refused at its next connection: its reads fail with
// store.ErrUnavailable and the reason (the resolver reads the next
// level), at once while it stays refused, Check says why, the store logs
// it once; once it matches again a read after sqlstore.RefusedRecheck uses it.
func TestReplicaChangesIdentity(t *testing.T) {
	t.Parallel()
	var errs atomic.Int32
	logger := slog.New(countHandler{slog.DiscardHandler, &errs})
	s := openFresh(t, 1, func(o *Options) { o.Logger = logger })
	ctx := t.Context()
	if err := s.CreateTable(ctx, "id"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "id", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	if v := versionAt(t, s, "id", "k", 0); v != 1 {
		t.Fatalf("the replica: version %d", v)
	}

	ours := *s.primaryID.Load()
	other := ours
	other.marker = "another"
	s.primaryID.Store(&other)
	// As a restart of the server behind the DSN would: its connections go.
	s.replicas[0].SetMaxIdleConns(0)
	s.replicas[0].SetMaxIdleConns(8)
	for i := range 3 {
		_, _, err := s.Get(ctx, "id", []byte("k"), 0)
		_, merr := s.GetMany(ctx, "id", [][]byte{[]byte("k"), []byte("x")}, 0)
		for _, e := range []error{err, merr} {
			if !errors.Is(e, store.ErrUnavailable) || !strings.Contains(fmt.Sprint(e), "identity") {
				t.Fatalf("read %d at a replica of another primary: %v; want store unavailable saying why", i, e)
			}
		}
	}
	if err := s.Check(ctx); err == nil || !strings.Contains(err.Error(), "replica-0") {
		t.Errorf("Check with a refused replica: %v", err)
	}
	if n := s.ReplicasRefused(); n != 1 {
		t.Errorf("ReplicasRefused = %d, want 1", n)
	}
	if n := errs.Load(); n != 1 {
		t.Errorf("%d errors logged, want 1", n)
	}
	if v := versionAt(t, s, "id", "k", 1); v != 1 {
		t.Errorf("the primary's level: version %d", v)
	}

	s.primaryID.Store(&ours)
	s.reps.Recheck(0)
	if v := versionAt(t, s, "id", "k", 0); v != 1 {
		t.Errorf("the replica, ours again: version %d", v)
	}
	if n := s.ReplicasRefused(); n != 0 {
		t.Errorf("ReplicasRefused = %d after it matched again, want 0", n)
	}
	if err := s.Check(ctx); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// TestReplicaNamesNoDatabase: a replica DSN that names no database is
// refused at Open, saying so, as identity.go promises ("its DSN names no
// database"), not taken for a replica that did not answer and left to
// fail every read at its level with the server's "No database selected".
func TestReplicaNamesNoDatabase(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	noDB := dsn[:strings.LastIndex(dsn, "/")+1]
	s, err := Open(context.Background(), Options{DSN: dsn, ReplicaDSNs: []string{noDB}, Logger: quiet})
	if err == nil {
		defer s.Close()
		_, _, rerr := s.Get(t.Context(), "x", []byte("k"), 0)
		t.Fatalf("Open with a replica DSN naming no database: no error (a Get at its level: %v); want it refused", rerr)
	}
	if !strings.Contains(err.Error(), "names no database") {
		t.Fatalf("Open with a replica DSN naming no database: %v; want it refused as naming none", err)
	}
}
