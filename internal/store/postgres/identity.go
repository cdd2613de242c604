package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// Replica identity. A read at a replica level is worth something only if
// the replica shows the primary's rows: a DSN that names a server of
// another cluster (another PostgreSQL, or a standby of another primary),
// another database of the cluster, or another schema (a replica DSN
// without the primary's search_path) serves rows the primary never had,
// and misses the ones it has. The resolver would publish them.
//
// Every connection of a replica pool is checked as it is made (pgxpool's
// AfterConnect, so at Open and whenever the pool reconnects: after a
// restart, a failover behind the DSN's host name, the pool's hourly
// recycling), by one query: the cluster's system_identifier
// (pg_control_system(), the same on a primary and every physical
// standby of it), the database's oid and the oid of the schema the DSN's
// search_path resolves to (a physical standby has the primary's oids). A
// replica whose schema does not exist yet (it has not replayed its
// creation) resolves no table and is not refused: its reads answer "not
// found", as for a table it has not replayed.
//
// A connection that does not match is closed, and the replica refused:
// for sqlstore.RefusedRecheck, reads at its level fail at once with the reason
// (store.ErrUnavailable: the resolver reads the next level), Check
// reports it, ReplicasRefused counts it, and the store logs it once, at
// error level, saying what to fix; the connections it had are dropped.
// After sqlstore.RefusedRecheck a read tries a new connection, which is checked
// again: a fixed DSN (or a server put back) needs no restart. Open
// refuses a replica that answers and does not match.

// identitySQL reads what a connection's reads show; one round trip, run
// at each new connection.
const identitySQL = `SELECT s.system_identifier, d.oid, d.datname, n.oid, coalesce(pg_catalog.current_schema(), '')
FROM pg_catalog.pg_control_system() s
CROSS JOIN pg_catalog.pg_database d
LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = pg_catalog.current_schema()
WHERE d.datname = pg_catalog.current_database()`

// identityNoSystemSQL is identitySQL for a server that does not let its
// user read pg_control_system() (a managed service may revoke it): the
// system identifier is then 0, unknown.
const identityNoSystemSQL = `SELECT 0::bigint, d.oid, d.datname, n.oid, coalesce(pg_catalog.current_schema(), '')
FROM pg_catalog.pg_database d
LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = pg_catalog.current_schema()
WHERE d.datname = pg_catalog.current_database()`

// identity is what a connection's reads show.
type identity struct {
	system    int64 // 0: unknown (pg_control_system() not readable)
	dbOID     uint32
	db        string
	schemaOID *uint32 // nil: the search_path resolves to no schema
	schema    string
}

func readIdentity(ctx context.Context, c *pgx.Conn) (identity, error) {
	var id identity
	scan := func(sql string) error {
		return c.QueryRow(ctx, sql, pgx.QueryExecModeSimpleProtocol).Scan(&id.system, &id.dbOID, &id.db, &id.schemaOID, &id.schema)
	}
	err := scan(identitySQL)
	if noControlFunction(err) {
		err = scan(identityNoSystemSQL)
	}
	if err != nil {
		return identity{}, fmt.Errorf("read the server's identity (pg_control_system()): %w", err)
	}
	return id, nil
}

// noControlFunction reports whether err says that pg_control_system()
// cannot be run by this user or on this server (revoked, or not offered
// by a managed service), rather than that the server failed.
func noControlFunction(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "42501", "42883", "0A000": // insufficient_privilege, undefined_function, feature_not_supported
		return true
	}
	return false
}

// differs says how got (a replica's) differs from want (the primary's),
// or "" when got shows the primary's rows.
func (want identity) differs(got identity) string {
	switch {
	case got.system != want.system && got.system != 0 && want.system != 0:
		return fmt.Sprintf("its system identifier is %d, the primary's %d: it is not a standby of the primary "+
			"(another server, or a standby of another primary)", got.system, want.system)
	case got.dbOID != want.dbOID:
		return fmt.Sprintf("it reads database %q (oid %d), the primary's database %q (oid %d)", got.db, got.dbOID, want.db, want.dbOID)
	case got.schemaOID != nil && want.schemaOID != nil && *got.schemaOID != *want.schemaOID:
		return fmt.Sprintf("its search_path resolves to schema %q, the primary's to schema %q (give the replica DSN the primary DSN's search_path)",
			got.schema, want.schema)
	}
	return ""
}

// checkReplica is replica i's pool's AfterConnect: it refuses a
// connection whose reads do not show the primary's rows.
func (s *Store) checkReplica(i int) func(context.Context, *pgx.Conn) error {
	return func(ctx context.Context, c *pgx.Conn) error {
		want := s.primaryID.Load()
		if want == nil {
			return nil // Open has not read the primary's yet; it checks the replicas after
		}
		got, err := readIdentity(ctx, c)
		if err != nil {
			return err
		}
		if why := want.differs(got); why != "" {
			err, first := s.reps.Refuse(i, why)
			if first {
				s.log.Error("postgres: "+err.Error(), "level", err.Level)
				go s.replicas[i].Reset() // the connections it had (made before it changed)
			}
			return err
		}
		if s.reps.Accept(i) {
			s.log.Info("postgres: replica shows the primary's rows again; reading it", "level", s.levels[i], "addr", s.reps.Addr(i))
		}
		return nil
	}
}

// ReplicasRefused returns how many replicas are refused now for not
// showing the primary's rows (see identity.go).
func (s *Store) ReplicasRefused() int { return s.reps.Refused() }

// ReplicasBypassed returns how many replicas' circuit breakers are open
// now (their reads go to the next level: Options.Breaker), and how many
// reads they failed at once so far.
func (s *Store) ReplicasBypassed() (replicas int, reads uint64) { return s.reps.Bypassed() }

// BypassedReplicas returns, per replica whose circuit breaker is open now,
// a *sqlstore.Bypassed that says which and why.
func (s *Store) BypassedReplicas() []error { return s.reps.BypassedNow() }

// checkReplicasAtOpen reads the primary's identity, then makes a
// connection to each replica (all at once, bounded by the query timeout),
// which checks it: a replica that answers and is not ours fails Open; one
// that does not answer is left to be checked when it does.
func (s *Store) checkReplicasAtOpen(ctx context.Context) error {
	if len(s.replicas) == 0 {
		return nil
	}
	conn, err := s.primary.Acquire(ctx)
	if err != nil {
		return s.classify(ctx, err)
	}
	id, err := readIdentity(ctx, conn.Conn())
	conn.Release()
	if err != nil {
		return s.classify(ctx, err)
	}
	if id.system == 0 {
		s.log.Warn("postgres: pg_control_system() cannot be read on the primary: replicas are checked by database and schema, " +
			"not by cluster; grant EXECUTE ON FUNCTION pg_control_system() to wail's user so that a replica of another cluster is refused")
	}
	s.primaryID.Store(&id)
	return sqlstore.CheckAtOpen(len(s.replicas), func(i int) error {
		c, err := s.replicas[i].Acquire(ctx)
		if err != nil {
			return err
		}
		c.Release()
		return nil
	}, func(i int, err error) {
		s.log.Warn("postgres: replica not reached at open; it is checked when it answers", "level", s.levels[i], "err", err)
	})
}

func hostPort(cfg *pgx.ConnConfig) string {
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}
