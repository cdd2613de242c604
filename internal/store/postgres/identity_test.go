package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// withDatabase returns dsn naming database db instead.
func withDatabase(t *testing.T, dsn, db string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + db
	return u.String()
}

// TestReplicaNotOurs: a replica DSN that does not show the primary's rows
// (another cluster, another database of the cluster, another schema: a
// DSN without the primary's search_path) is refused at Open, with an
// error that says what differs and what to fix. Reads from it served
// rows the primary never had, or missed the ones it has.
func TestReplicaNotOurs(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	cases := []struct {
		name, replica, want string
	}{
		// The replica's search_path names no schema of ours: public.
		{"another schema", replicaDSN(t), "schema"},
		{"another database", withDatabase(t, replicaDSN(t), "postgres"), "database"},
	}
	// A PostgreSQL server that is not of the test primary's cluster
	// (scripts/services.sh runs one), with a database wail whose oid and
	// public schema's are likely the primary's.
	cases = append(cases, struct{ name, replica, want string }{"another cluster", sqltest.PostgresOther(t), "system identifier"})
	for _, tc := range cases {
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

// TestReplicaChangesIdentity: a replica whose new connections stop
// showing the primary's rows (here: the primary's identity the store
// compares with is changed, as a server of another cluster behind the
// same DSN would) is refused at its next connection: its reads fail with
// store.ErrUnavailable and the reason (the resolver reads the next
// level), at once while it stays refused, Check says why, the store logs
// it once; once it matches again a read after sqlstore.RefusedRecheck uses it.
func TestReplicaChangesIdentity(t *testing.T) {
	t.Parallel()
	var errs atomic.Int32
	logger := slog.New(countHandler{slog.DiscardHandler, &errs})
	s := openFresh(t, true, func(o *Options) { o.Logger = logger })
	ctx := t.Context()
	if err := s.CreateTable(ctx, "id"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "id", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replica to show the write", func() bool { return versionAt(t, s, "id", "k", 0) == 1 })

	ours := *s.primaryID.Load()
	other := ours
	other.system++
	s.primaryID.Store(&other)
	s.replicas[0].Reset() // as a restart of the server behind the DSN would
	for i := range 3 {
		_, _, err := s.Get(ctx, "id", []byte("k"), 0)
		_, merr := s.GetMany(ctx, "id", [][]byte{[]byte("k"), []byte("x")}, 0)
		for _, e := range []error{err, merr} {
			if !errors.Is(e, store.ErrUnavailable) || !strings.Contains(fmt.Sprint(e), "system identifier") {
				t.Fatalf("read %d at a replica of another cluster: %v; want store unavailable saying why", i, e)
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

// TestIdentityWithoutControlFunction: a server whose user may not run
// pg_control_system() (revoked, or a managed service without it) has
// its replicas checked by database and schema, with the system identifier
// unknown (0) on either side, instead of every replica, or Open, failing
// on the query.
func TestIdentityWithoutControlFunction(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "42501"}, true},
		{&pgconn.PgError{Code: "42883"}, true},
		{&pgconn.PgError{Code: "0A000"}, true},
		{&pgconn.PgError{Code: "57014"}, false}, // canceled: the server failed, not the function
		{fmt.Errorf("read: %w", &pgconn.PgError{Code: "42501"}), true},
		{errors.New("connection reset"), false},
		{nil, false},
	} {
		if got := noControlFunction(tc.err); got != tc.want {
			t.Errorf("noControlFunction(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	oid := func(n uint32) *uint32 { return &n }
	want := identity{system: 7, dbOID: 16384, db: "wail", schemaOID: oid(2200), schema: "public"}
	for _, tc := range []struct {
		got   identity
		match bool
	}{
		{identity{system: 0, dbOID: 16384, db: "wail", schemaOID: oid(2200)}, true},
		{identity{system: 8, dbOID: 16384, db: "wail", schemaOID: oid(2200)}, false},
		{identity{system: 0, dbOID: 5, db: "postgres", schemaOID: oid(2200)}, false},
	} {
		if why := want.differs(tc.got); (why == "") != tc.match {
			t.Errorf("differs(%+v) = %q; want a match %v", tc.got, why, tc.match)
		}
	}
	unknown := identity{system: 0, dbOID: 16384, db: "wail", schemaOID: oid(2200)}
	if why := unknown.differs(identity{system: 8, dbOID: 16384, db: "wail", schemaOID: oid(2200)}); why != "" {
		t.Errorf("the primary's system unknown: %q; want a replica compared by database and schema", why)
	}
}
