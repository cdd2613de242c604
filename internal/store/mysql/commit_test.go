package mysql

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// silentAfter relays TCP connections to target until a client sends the
// statement stmt (a COM_QUERY): it reaches the server, and nothing the
// server answers from then on reaches the client (a lost answer, or a
// server stalled in its commit: an fsync, a semi-sync replica).
func silentAfter(t *testing.T, target, stmt string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	relay := func(from, to net.Conn, see func([]byte), pass func() bool) {
		buf := make([]byte, 1<<16)
		for {
			n, err := from.Read(buf)
			if n > 0 {
				see(buf[:n])
				if pass() {
					_, _ = to.Write(buf[:n])
				}
			}
			if err != nil {
				return
			}
		}
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				return
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			var silent atomic.Bool
			go relay(c, s, func(b []byte) {
				if bytes.Contains(b, []byte("\x03"+stmt)) {
					silent.Store(true)
				}
			}, func() bool { return true })
			go relay(s, c, func([]byte) {}, func() bool { return !silent.Load() })
		}
	}()
	return l.Addr().String()
}

// TestCommitWithinDeadline: a write whose COMMIT gets no answer returns
// once its context ends, with an error that says its outcome is unknown
// (not store.ErrNotApplied: the COMMIT was sent). database/sql's Commit
// takes no context: the write waited for the answer as long as the
// connection lived, and a late answer reported it stored after the
// deadline the proxy gave it. A write whose COMMIT was answered returns
// at once, whatever comes after (the ROLLBACK that ends database/sql's
// transaction is not waited for).
func TestCommitWithinDeadline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		silentAfter string
		stored      bool
	}{{"COMMIT", false}, {"ROLLBACK", true}} {
		t.Run(tc.silentAfter, func(t *testing.T) {
			t.Parallel()
			dsn := sqltest.MySQLDatabase(t, sqltest.MySQL(t))
			cfg, err := mysql.ParseDSN(dsn)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Addr = silentAfter(t, cfg.Addr, tc.silentAfter)
			s, err := Open(t.Context(), Options{DSN: cfg.FormatDSN(), Logger: quiet})
			s = sqltest.Closing(t, s, err)
			if err := s.CreateTable(t.Context(), "c"); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_, err := s.Apply(ctx, "c", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}})
				done <- err
			}()
			select {
			case err := <-done:
				switch {
				case tc.stored && err != nil:
					t.Fatalf("a write whose COMMIT was answered: %v", err)
				case !tc.stored && (err == nil || errors.Is(err, store.ErrNotApplied)):
					t.Fatalf("a write whose COMMIT got no answer: %v; want an error of unknown outcome", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("a write with a 1s deadline, silence after its %s, still waits after 20s", tc.silentAfter)
			}
		})
	}
}
