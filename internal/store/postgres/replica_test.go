package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wail-cdc/wail/internal/store"
)

func queryString(t testing.TB, dsn, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// eventually polls cond every 20ms for up to 30s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func versionAt(t *testing.T, s *Store, table, key string, level store.Level) uint64 {
	t.Helper()
	row, found, err := s.Get(t.Context(), table, []byte(key), level)
	if err != nil {
		t.Fatalf("Get(%s, %s) at level %d: %v", table, key, level, err)
	}
	if !found {
		return 0
	}
	return row.Version
}

// TestReplicaRead proves that level 0 reads the replica: with its replay
// paused, a new write is visible at level 1 (primary) but not at level 0.
func TestReplicaRead(t *testing.T) {
	s := openFresh(t, true)
	rdsn := replicaDSN(t)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	put := func(k string, v uint64) {
		t.Helper()
		if _, err := s.Apply(ctx, "r", []store.Mutation{{Key: []byte(k), Value: []byte("v"), Version: v}}); err != nil {
			t.Fatal(err)
		}
	}
	put("k", 1)
	eventually(t, "the replica to see version 1", func() bool { return versionAt(t, s, "r", "k", 0) == 1 })

	exec(t, rdsn, "SELECT pg_wal_replay_pause()")
	t.Cleanup(func() { exec(t, rdsn, "SELECT pg_wal_replay_resume()") })
	eventually(t, "replay to pause", func() bool {
		return queryString(t, rdsn, "SELECT pg_get_wal_replay_pause_state()") == "paused"
	})
	put("k", 2)
	put("new", 1)
	if v := versionAt(t, s, "r", "k", 0); v != 1 {
		t.Errorf("level 0 (paused replica): version %d, want 1", v)
	}
	if v := versionAt(t, s, "r", "new", 0); v != 0 {
		t.Errorf("level 0 (paused replica): new key found at version %d", v)
	}
	if v := versionAt(t, s, "r", "k", 1); v != 2 {
		t.Errorf("level 1 (primary): version %d, want 2", v)
	}
	eventually(t, "a positive lag while paused", func() bool {
		lags, err := s.ReplicaLag(ctx)
		return err == nil && len(lags) == 1 && lags[0] > 0
	})

	exec(t, rdsn, "SELECT pg_wal_replay_resume()")
	eventually(t, "the replica to catch up", func() bool {
		return versionAt(t, s, "r", "k", 0) == 2 && versionAt(t, s, "r", "new", 0) == 1
	})
	eventually(t, "lag 0 after catching up", func() bool {
		lags, err := s.ReplicaLag(ctx)
		return err == nil && lags[0] == 0
	})
	if err := s.Check(ctx); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// TestReplicaLagsTable: a table the replica has not replayed yet reads as
// empty at level 0, not as an unknown table.
func TestReplicaLagsTable(t *testing.T) {
	s := openFresh(t, true)
	rdsn := replicaDSN(t)
	ctx := t.Context()
	exec(t, rdsn, "SELECT pg_wal_replay_pause()")
	t.Cleanup(func() { exec(t, rdsn, "SELECT pg_wal_replay_resume()") })
	eventually(t, "replay to pause", func() bool {
		return queryString(t, rdsn, "SELECT pg_get_wal_replay_pause_state()") == "paused"
	})
	if err := s.CreateTable(ctx, "late"); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.Get(ctx, "late", []byte("k"), 0); err != nil || found {
		t.Errorf("Get at level 0 before the replica has the table: found=%v err=%v", found, err)
	}
	if _, _, err := s.Get(ctx, "never", []byte("k"), 0); !errors.Is(err, store.ErrUnknownTable) {
		t.Errorf("Get(never) at level 0: %v, want ErrUnknownTable", err)
	}
	if reads, err := s.GetMany(ctx, "late", [][]byte{[]byte("k")}, 0); err != nil || len(reads) != 1 || reads[0].Found {
		t.Errorf("GetMany at level 0 before the replica has the table: %+v, %v", reads, err)
	}
	if _, err := s.GetMany(ctx, "never", [][]byte{[]byte("k")}, 0); !errors.Is(err, store.ErrUnknownTable) {
		t.Errorf("GetMany(never) at level 0: %v, want ErrUnknownTable", err)
	}
}
