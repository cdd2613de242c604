package mysql

import (
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/logbuf"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestDriverLogsThroughTheStore: the driver's own messages (here: a
// pooled connection the server had killed while it sat idle, found out
// and replaced; after a restart of the database, one per connection)
// went to the process's stderr as unstructured "[mysql] ..." lines,
// whatever the process's log format. They go to the store's logger, at
// debug level: the error they describe, when it fails a call, is that
// call's to return.
func TestDriverLogsThroughTheStore(t *testing.T) {
	t.Parallel()
	var buf logbuf.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dsn := sqltest.MySQLDatabase(t, sqltest.MySQL(t))
	s, err := Open(t.Context(), Options{DSN: dsn, Logger: log, MaxConns: 1})
	s = sqltest.Closing(t, s, err)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "dl"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "dl", []store.Mutation{{Key: []byte("k"), Value: []byte("v1"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	c, err := s.primary.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := c.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	sqltest.ExecMySQL(t, dsn, "KILL CONNECTION "+strconv.FormatInt(id, 10))
	if _, err := s.Apply(ctx, "dl", []store.Mutation{{Key: []byte("k"), Value: []byte("v2"), Version: 2}}); err != nil {
		t.Fatalf("apply after the idle connection was killed: %v", err)
	}
	got := buf.String()
	if !strings.Contains(got, "closing bad idle connection") || !strings.Contains(got, "level=DEBUG") {
		t.Fatalf("the store's log after an idle connection was killed:\n%s\nwant the driver's message, at debug level", got)
	}
}
