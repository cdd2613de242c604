package postgres

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wail-cdc/wail/internal/store"
)

// preparedOn returns the statements prepared on the connection of s's
// primary pool (of one connection): name -> statement text.
func preparedOn(t *testing.T, s *Store) map[string]string {
	t.Helper()
	ctx := t.Context()
	conn, err := s.primary.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	rows, err := conn.Conn().PgConn().Exec(ctx, `SELECT name, statement FROM pg_prepared_statements`).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows[0].Rows {
		out[string(r[0])] = string(r[1])
	}
	return out
}

// TestWritesPreparedOnce: in pgx's default mode, Apply, ScanKeys and
// GetMany each run one named statement per table on a connection,
// prepared the first time (in their bounded round trip) and only executed
// afterwards: after many of each on one connection, exactly one prepared
// statement holds each one's text. Unnamed, a statement was planned at
// every execution (docs/benchmarks.md, "SQL read-backs").
func TestWritesPreparedOnce(t *testing.T) {
	t.Parallel()
	s := openFresh(t, false, func(o *Options) { o.MaxConns = 1 })
	ctx := t.Context()
	for _, table := range []string{"po1", "po2"} {
		if err := s.CreateTable(ctx, table); err != nil {
			t.Fatal(err)
		}
		for v := uint64(1); v <= 8; v++ {
			if _, err := s.Apply(ctx, table, []store.Mutation{{Key: []byte("a"), Value: []byte("v"), Version: v}, {Key: []byte{byte(v)}, Value: []byte("w"), Version: v}}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ScanKeys(ctx, table, nil, 10); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetMany(ctx, table, [][]byte{[]byte("a"), {byte(v)}}, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	prepared := preparedOn(t, s)
	for _, table := range []string{"po1", "po2"} {
		ident := tableIdent(table)
		for kind, sql := range map[string]string{"apply": applySQL(ident), "scan": scanSQL(ident), "get many": multiGetSQL(ident)} {
			var names []string
			for name, text := range prepared {
				if text == sql {
					names = append(names, name)
				}
			}
			if len(names) != 1 {
				t.Errorf("%s of %s: %d prepared statements with its text (%v); want 1", kind, table, len(names), names)
			}
		}
	}
	if t.Failed() {
		var all []string
		for name, text := range prepared {
			all = append(all, name+": "+strings.Join(strings.Fields(text), " "))
		}
		t.Logf("prepared on the connection:\n%s", strings.Join(all, "\n"))
	}
}

// TestPreparedAfterTableRecreated: a table dropped and created again
// under the same name while its statements are prepared on a connection:
// PostgreSQL analyzes a prepared statement again when a table it uses
// changes, so writes and reads on that connection reach the new table.
func TestPreparedAfterTableRecreated(t *testing.T) {
	t.Parallel()
	s := openFresh(t, false, func(o *Options) { o.MaxConns = 1 })
	ctx := t.Context()
	const table = "rc"
	for round := uint64(1); round <= 3; round++ {
		if err := s.CreateTable(ctx, table); err != nil {
			t.Fatal(err)
		}
		for v := round * 10; v < round*10+3; v++ {
			out, err := s.Apply(ctx, table, []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: v}})
			if err != nil || len(out) != 1 || !out[0].Applied {
				t.Fatalf("round %d: apply of version %d: %+v, %v", round, v, out, err)
			}
		}
		keys, err := s.ScanKeys(ctx, table, nil, 10)
		if err != nil || len(keys) != 1 || keys[0].Version != round*10+2 {
			t.Fatalf("round %d: scan: %+v, %v", round, keys, err)
		}
		reads, err := s.GetMany(ctx, table, [][]byte{[]byte("k"), []byte("x")}, 0)
		if err != nil {
			t.Fatalf("round %d: get many: %v", round, err)
		}
		if len(reads) != 2 || !reads[0].Found || reads[0].Row.Version != round*10+2 || reads[1].Found {
			t.Fatalf("round %d: get many: %+v", round, reads)
		}
		if err := s.DropTable(ctx, table); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPreparedSetOutOfStep: the set of names a connection has prepared
// out of step with the server, both ways: a statement deallocated behind
// the store's back (DEALLOCATE ALL: "does not exist", 26000) is prepared
// again, and one the set forgot ("already exists", 42P05) is executed as
// it is; the write goes through either way, once.
func TestPreparedSetOutOfStep(t *testing.T) {
	t.Parallel()
	s := openFresh(t, false, func(o *Options) { o.MaxConns = 1 })
	ctx := t.Context()
	if err := s.CreateTable(ctx, "os"); err != nil {
		t.Fatal(err)
	}
	v := uint64(0)
	apply := func(what string) {
		t.Helper()
		v++
		out, err := s.Apply(ctx, "os", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: v}})
		if err != nil || len(out) != 1 || !out[0].Applied {
			t.Fatalf("%s: apply of version %d: %+v, %v", what, v, out, err)
		}
	}
	onConn := func(f func(c *pgconn.PgConn)) {
		conn, err := s.primary.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		f(conn.Conn().PgConn())
	}
	apply("first")
	onConn(func(c *pgconn.PgConn) {
		if _, err := c.Exec(ctx, "DEALLOCATE "+statementName(applySQL(tableIdent("os")))).ReadAll(); err != nil {
			t.Fatal(err)
		}
	})
	apply("deallocated")
	onConn(func(c *pgconn.PgConn) { delete(preparedSet(c), statementName(applySQL(tableIdent("os")))) })
	apply("forgotten")
	apply("again")
	n := 0
	for _, text := range preparedOn(t, s) {
		if text == applySQL(tableIdent("os")) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d statements of the write prepared; want 1", n)
	}
}
