package mysql

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
	"github.com/wail-cdc/wail/internal/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// freshDSNs returns the DSN of a fresh database, dropped when the test
// ends, and replicas "replicas" of it that are the primary itself (no
// MariaDB replica in tests).
func freshDSNs(t testing.TB, replicas int) (string, []string) {
	dsn := sqltest.MySQLDatabase(t, sqltest.MySQL(t))
	return dsn, slices.Repeat([]string{dsn}, replicas)
}

// openFresh opens a store on a fresh database with replicas replicas (see
// freshDSNs); tune may change the options.
func openFresh(t testing.TB, replicas int, tune ...func(*Options)) *Store {
	t.Helper()
	dsn, replicaDSNs := freshDSNs(t, replicas)
	opts := Options{DSN: dsn, ReplicaDSNs: replicaDSNs, MaxConns: 8, Logger: quiet}
	for _, f := range tune {
		f(&opts)
	}
	s, err := Open(context.Background(), opts)
	return sqltest.Closing(t, s, err)
}

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t, 0) })
}

func TestSuiteWithReplica(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t, 1) })
}

func TestDialect(t *testing.T) {
	for version, want := range map[string]Dialect{
		"10.11.6-MariaDB-0+deb12u1-log": DialectMariaDB,
		"5.5.5-10.11.6-MariaDB":         DialectMariaDB,
		"11.4.2-MariaDB":                DialectMariaDB,
		"5.7.44-log":                    DialectMariaDB,
		"8.0.18":                        DialectMariaDB,
		"8.0.19":                        DialectMySQL8,
		"8.0.36-0ubuntu0.22.04.1":       DialectMySQL8,
		"8.4.0":                         DialectMySQL8,
		"9.1.0":                         DialectMySQL8,
	} {
		if got := detectDialect(version); got != want {
			t.Errorf("detectDialect(%q) = %v, want %v", version, got, want)
		}
	}
	s := openFresh(t, 0)
	if s.Dialect() != DialectMariaDB {
		t.Errorf("dialect of the test server: %v", s.Dialect())
	}
	my := &Store{dialect: DialectMySQL8}
	q := my.upsertSQL("`t`", 2)
	for _, part := range []string{"VALUES (?,?,?,?,?,?,?),(?,?,?,?,?,?,?) AS new ON DUPLICATE KEY UPDATE", "IF(new.version > version, new.value, value)"} {
		if !strings.Contains(q, part) {
			t.Errorf("MySQL 8 statement %q lacks %q", q, part)
		}
	}
	if strings.Contains(q, "VALUES(") || !strings.HasSuffix(q, "version = GREATEST(version, new.version)") {
		t.Errorf("MySQL 8 statement: %q", q)
	}
}

// TestSQL runs the suite of the SQL stores; the "replicas" are the
// primary itself.
func TestSQL(t *testing.T) {
	sqltest.Run(t, sqltest.Config[*Store]{
		Fresh:    freshDSNs,
		Replicas: 2,
		Open: func(ctx context.Context, dsn string, replicaDSNs []string, timeout time.Duration) (*Store, error) {
			return Open(ctx, Options{DSN: dsn, ReplicaDSNs: replicaDSNs, MaxConns: 8, QueryTimeout: timeout, Logger: quiet})
		},
		DSN:      func(addr string) string { return "wail:wail@tcp(" + addr + ")/wail" },
		MaxIdent: maxIdent,
		Locker:   sqltest.MySQLLocker,
	})
}

// TestChunks: a batch larger than one statement's rows is applied as one
// unit.
func TestChunks(t *testing.T) {
	t.Parallel()
	s := openFresh(t, 0)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "cur"); err != nil {
		t.Fatal(err)
	}
	big := make([]store.Mutation, 2*chunkRows+7)
	for i := range big {
		key := strings.Repeat("k", i%50) + string(rune('a'+i%26)) + string(rune(i))
		big[i] = store.Mutation{Key: []byte(key), Value: []byte("v"), Version: uint64(i + 1)}
	}
	out, err := s.Apply(ctx, "cur", big)
	if err != nil {
		t.Fatalf("Apply of %d mutations: %v", len(big), err)
	}
	for i, o := range out {
		if !o.Applied {
			t.Fatalf("mutation %d of a chunked batch: %+v", i, o)
		}
	}
}
