package mysql

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// TestReplicaLockRaceIsAnAnswer: a replica read that lost a lock race (a
// deadlock, a lock wait timeout) was answered by a replica that is up: it
// must not count towards opening the replica's breaker, which would send
// every read of the level to the next one. A statement stopped by its
// bound or a lost connection does.
func TestReplicaLockRaceIsAnAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		err   error
		opens bool
	}{
		{"deadlock", &mysql.MySQLError{Number: errDeadlock}, false},
		{"lock wait timeout", &mysql.MySQLError{Number: errLockWaitTimeout}, false},
		{"not found", sql.ErrNoRows, false},
		{"max_statement_time", &mysql.MySQLError{Number: 1969}, true},
		{"connection lost", mysql.ErrInvalidConn, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &Store{replicas: []*sql.DB{nil}, levels: sqlstore.LevelNames(1), log: quiet}
			s.reps.Add("replica-0", "replica:3306")
			s.reps.SetBreaker(sqlstore.Breaker{Failures: 2})
			for range 2 {
				read, err := s.reps.Admit(0)
				if err != nil {
					t.Fatalf("Admit: %v", err)
				}
				s.replicaDone(t.Context(), read, tc.err)
			}
			_, err := s.reps.Admit(0)
			var bypassed *sqlstore.Bypassed
			if opens := errors.As(err, &bypassed); opens != tc.opens {
				t.Fatalf("after two reads failing with %v: breaker open %v (Admit: %v), want %v", tc.err, opens, err, tc.opens)
			}
		})
	}
}

// TestUnsentReadFreesTheProbe: a read at a replica whose breaker is
// half-open is let through as the probe; when it reads nothing (GetMany
// of no keys) or is not sent (too little time left for its bound), it
// must hand the probe back, or every later read of the level is bypassed
// with no probe ever let out again.
func TestUnsentReadFreesTheProbe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		read func(ctx context.Context, s *Store) error
	}{
		{"GetMany of no keys", func(ctx context.Context, s *Store) error {
			_, err := s.GetMany(ctx, "t", nil, 0)
			return err
		}},
		{"GetMany not sent", func(ctx context.Context, s *Store) error {
			ctx, cancel := context.WithTimeout(ctx, time.Millisecond)
			defer cancel()
			if _, err := s.GetMany(ctx, "t", [][]byte{[]byte("k")}, 0); err == nil {
				return errors.New("GetMany with a millisecond left answered")
			}
			return nil
		}},
		{"Get not sent", func(ctx context.Context, s *Store) error {
			ctx, cancel := context.WithTimeout(ctx, time.Millisecond)
			defer cancel()
			if _, _, err := s.Get(ctx, "t", []byte("k"), 0); err == nil {
				return errors.New("Get with a millisecond left answered")
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &Store{replicas: []*sql.DB{nil}, levels: sqlstore.LevelNames(1), log: quiet, timeout: time.Second}
			s.reps.Add("replica-0", "replica:3306")
			s.reps.SetBreaker(sqlstore.Breaker{Failures: 1, Backoff: time.Millisecond, MaxBackoff: time.Millisecond})
			read, err := s.reps.Admit(0)
			if err != nil {
				t.Fatal(err)
			}
			s.replicaDone(t.Context(), read, &mysql.MySQLError{Number: 1969}) // opens it
			time.Sleep(10 * time.Millisecond)                                 // past the backoff
			if err := tc.read(t.Context(), s); err != nil {
				t.Fatal(err)
			}
			if _, err := s.reps.Admit(0); err != nil {
				t.Fatalf("after a read that sent nothing took the probe, the next read is bypassed: %v", err)
			}
		})
	}
}

// TestProbeReadClosesTheBreaker: once a replica's breaker opened, the read
// let through after the backoff probes it; its answer closes the breaker,
// a Get's as a GetMany's, and the level's reads go to the replica again.
func TestProbeReadClosesTheBreaker(t *testing.T) {
	t.Parallel()
	s := openFresh(t, 1, func(o *Options) {
		o.Breaker = sqlstore.Breaker{Failures: 1, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}
	})
	ctx := t.Context()
	if err := s.CreateTable(ctx, "pb"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		read func() error
	}{
		{"Get", func() error { _, _, err := s.Get(ctx, "pb", []byte("k"), 0); return err }},
		{"GetMany", func() error { _, err := s.GetMany(ctx, "pb", [][]byte{[]byte("k")}, 0); return err }},
	} {
		read, err := s.reps.Admit(0)
		if err != nil {
			t.Fatal(err)
		}
		s.replicaDone(ctx, read, &mysql.MySQLError{Number: 1969}) // opens it
		if !s.reps.Open(0) {
			t.Fatal("a stalled read did not open the breaker")
		}
		time.Sleep(10 * time.Millisecond) // past the backoff
		if err := tc.read(); err != nil {
			t.Fatalf("%s probing the replica: %v", tc.name, err)
		}
		if s.reps.Open(0) {
			t.Errorf("%s answered at the replica as the probe, and its breaker is still open", tc.name)
		}
	}
}
