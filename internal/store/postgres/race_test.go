package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// TestReplicaLockRaceIsAnAnswer: a replica read that lost a lock race (a
// deadlock, a serialization failure such as a recovery conflict, its
// lock_timeout) was answered by a replica that is up: it must not count
// towards opening the replica's breaker, which would send every read of
// the level to the next one. A statement timeout or a lost connection
// does.
func TestReplicaLockRaceIsAnAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		err   error
		opens bool
	}{
		{"deadlock", &pgconn.PgError{Severity: "ERROR", Code: codeDeadlock}, false},
		{"serialization failure", &pgconn.PgError{Severity: "ERROR", Code: codeSerializationFailure}, false},
		{"lock timeout", &pgconn.PgError{Severity: "ERROR", Code: codeLockNotAvailable}, false},
		{"not found", pgx.ErrNoRows, false},
		{"statement timeout", &pgconn.PgError{Severity: "ERROR", Code: codeQueryCanceled}, true},
		{"connection lost", &pgconn.PgError{Severity: "FATAL", Code: "08006"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &Store{replicas: []*pgxpool.Pool{nil}, levels: sqlstore.LevelNames(1), log: quiet}
			s.reps.Add("replica-0", "replica:5432")
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

// TestEmptyReadFreesTheProbe: a GetMany of no keys at a replica whose
// breaker is half-open is let through as the probe and reads nothing; it
// must hand the probe back, or every later read of the level is bypassed
// with no probe ever let out again.
func TestEmptyReadFreesTheProbe(t *testing.T) {
	t.Parallel()
	s := &Store{replicas: []*pgxpool.Pool{nil}, levels: sqlstore.LevelNames(1), log: quiet}
	s.reps.Add("replica-0", "replica:5432")
	s.reps.SetBreaker(sqlstore.Breaker{Failures: 1, Backoff: time.Millisecond, MaxBackoff: time.Millisecond})
	read, err := s.reps.Admit(0)
	if err != nil {
		t.Fatal(err)
	}
	s.replicaDone(t.Context(), read, &pgconn.PgError{Severity: "ERROR", Code: codeQueryCanceled}) // opens it
	time.Sleep(10 * time.Millisecond)                                                             // past the backoff
	if reads, err := s.GetMany(t.Context(), "t", nil, 0); err != nil || len(reads) != 0 {
		t.Fatalf("GetMany of no keys: %v, %v", reads, err)
	}
	if _, err := s.reps.Admit(0); err != nil {
		t.Fatalf("after an empty read took the probe, the next read is bypassed: %v", err)
	}
}

// TestProbeReadClosesTheBreaker: once a replica's breaker opened, the read
// let through after the backoff probes it; its answer closes the breaker,
// a Get's as a GetMany's, and the level's reads go to the replica again.
func TestProbeReadClosesTheBreaker(t *testing.T) {
	t.Parallel()
	s := openFresh(t, true, func(o *Options) {
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
		s.replicaDone(ctx, read, &pgconn.PgError{Severity: "ERROR", Code: codeQueryCanceled}) // opens it
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
