package mysql

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

func TestDropTableIf(t *testing.T) {
	t.Parallel()
	sqltest.FencedDrop(t, func(t *testing.T) *Store { return openFresh(t, 0) })
}

// TestCreateTableTakesTheNameLock: CreateTable waits for the lock of the
// table's name that a drop holds from its check of the catalog to the end
// of its DROP (fenced.go), so a table created again cannot exist before a
// drop that checked the entry of the old one has dropped.
func TestCreateTableTakesTheNameLock(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn, _ := freshDSNs(t, 0)
	s, err := Open(ctx, Options{DSN: dsn, MaxConns: 4, Logger: quiet})
	s = sqltest.Closing(t, s, err)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var got int64
	if err := conn.QueryRowContext(ctx, tableLockSQL, "t", 1).Scan(&got); err != nil || got != 1 {
		t.Fatalf("taking the lock of t: %d, %v", got, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	err = s.CreateTable(cctx, "t")
	cancel()
	if err == nil {
		t.Fatal("CreateTable succeeded while another session held the lock of the table's name")
	}
	if _, err := s.Apply(ctx, "t", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}}); !errors.Is(err, store.ErrUnknownTable) {
		t.Fatalf("after a CreateTable that failed waiting for the lock, Apply = %v; want ErrUnknownTable", err)
	}
	if _, err := conn.ExecContext(ctx, tableReleaseSQL, "t"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTable(ctx, "t"); err != nil {
		t.Fatalf("CreateTable once the lock is let go: %v", err)
	}
}
