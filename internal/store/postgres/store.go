// Package postgres is store.Store on PostgreSQL (pgx v5, pgxpool), with
// optional streaming replicas as the cheaper read levels.
//
// Schema (in the connection's search_path, usually public):
//
//	CREATE TABLE wail_<name> (
//	    key        bytea       NOT NULL,
//	    value      bytea       NOT NULL,          -- '' for a tombstone
//	    version    bigint      NOT NULL,
//	    deleted    boolean     NOT NULL,
//	    updated_at timestamptz NOT NULL DEFAULT now(),
//	    kh         bytea GENERATED ALWAYS AS (sha256(key)) STORED PRIMARY KEY,
//	    schema_id  bigint      NOT NULL DEFAULT 0, -- the value's schema (typed tables)
//	    doc        jsonb                           -- the value as JSON (typed tables)
//	);
//	CREATE TABLE wail__catalog (name text PRIMARY KEY, spec bytea NOT NULL);
//	CREATE TABLE wail__leases (...); -- lease.go: proxy ids (package lease)
//
// The primary key is the SHA-256 of the row key, not the key itself: a
// B-tree entry holds at most 2704 bytes and wail keys go up to 4 KiB.
// Lookups use kh = sha256($key) AND key = $key. A table exists when its SQL
// table does (CREATE TABLE IF NOT EXISTS, serialised by an advisory lock);
// names longer than 58 characters map to wailh_<first 40>_<hash>, so every
// wail name gets its own identifier within PostgreSQL's 63 bytes, and the
// double underscore of the catalog can never be a wail table's name.
//
// Apply is one statement per batch, one round trip:
//
//	INSERT INTO wail_<name> AS t (key, value, version, deleted, schema_id, doc)
//	SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::bool[], $5::bigint[], $6::text[]::jsonb[])
//	ON CONFLICT (kh) DO UPDATE
//	   SET value = excluded.value, version = excluded.version,
//	       deleted = excluded.deleted, updated_at = now(),
//	       schema_id = excluded.schema_id, doc = excluded.doc
//	 WHERE t.version < excluded.version
//	RETURNING key
//
// The batch is deduplicated first (highest version wins: ON CONFLICT cannot
// touch a row twice) and sorted by key, so concurrent batches lock rows in
// the same order. Rows named by RETURNING were applied; the stored versions
// of the others are read by a second query, only when there are any.
// Deadlocks and serialization failures are retried.
//
// The statement is bounded inside PostgreSQL by the caller's deadline: it
// is sent in one pipeline (one round trip, one implicit transaction) after
//
//	SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $1, true)
//
// with the time left less a margin (sqlstore.Budget), and parsed there,
// after the bound (never prepared in a round trip of its own first: the
// parse takes the table's lock, and a wait for it before the bound
// escaped it). In pgx's default mode it is a named statement, prepared in
// that pipeline the first time on each connection and planned once;
// otherwise unnamed (boundQuery). So a write the
// caller gave up on cannot commit long after (DESIGN.md, "Ambiguous store
// writes"). An ERROR from PostgreSQL (these timeouts included) rolled the
// write back: Apply wraps store.ErrNotApplied, as for a write never sent,
// and so does a FATAL (the session ended: a restart, pg_terminate_backend)
// read before the statement's CommandComplete (the transaction commits
// only at the pipeline's Sync, after it); other errors (a FATAL after
// it, a lost connection, the caller's deadline) leave the outcome
// unknown.
//
// Typed tables (DESIGN.md, "Queryable rows"): schema_id is the registry id
// of the schema the value was written with, and doc the value as its
// message's Protobuf JSON (protojson), written by the same statement as
// the value, so SQL can query it (doc->>'status'). A doc holding the
// escape \u0000, which jsonb cannot store, is written as NULL. Columns
// added by later versions are added to older tables at Open (migrateSQL).
//
// Durability: sessions run with synchronous_commit=on, so a commit is
// visible only after its WAL is flushed, and replicas only replay flushed
// WAL: Get never returns a write that is not durable. Versions must fit in
// a bigint (below 2^63), which wail's HLC versions do.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// Defaults for the zero fields of Options.
const (
	DefaultMaxConns     = 16
	DefaultQueryTimeout = 5 * time.Second
)

// Options configures Open.
type Options struct {
	// DSN of the primary, in any form pgx accepts
	// ("postgres://user:pass@host:port/db?sslmode=disable" or "host=...").
	DSN string
	// ReplicaDSNs are read-only replicas, the cheaper read levels in order.
	ReplicaDSNs []string
	// MaxConns bounds each pool (primary and every replica); 0 means 16.
	MaxConns int32
	// QueryTimeout bounds every query, connecting included; 0 means 5s.
	QueryTimeout time.Duration
	// ReplicaWait bounds how long a read at a replica level waits for the
	// replica to have replayed what the primary had flushed when the read
	// was asked (see fresh.go); then it reads the replica either way.
	// 0 means DefaultReplicaWait; negative: no wait (read at once).
	ReplicaWait time.Duration
	// Breaker configures each replica's circuit breaker: reads at a
	// replica that keeps timing out or losing its connection go to the
	// next level at once for a while (sqlstore.Breaker).
	Breaker sqlstore.Breaker
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Existing opens the schema as it is, for a check (wail doctor): Open
	// creates no table and migrates none, and fails with ErrNoCatalog when
	// wail's catalog table is not in the schema the DSN's search_path
	// resolves to.
	Existing bool
}

// ErrNoCatalog: Open with Options.Existing found no catalog table (wail
// never ran on this database and schema, or the DSN names another).
var ErrNoCatalog = errors.New("no wail catalog")

// Store is a store.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	primary  *pgxpool.Pool
	replicas []*pgxpool.Pool
	levels   []string
	timeout  time.Duration
	log      *slog.Logger
	closed   atomic.Bool
	fresh    *freshness // nil: no replicas, or ReplicaWait < 0

	primaryID atomic.Pointer[identity] // what the primary's reads show (identity.go)
	reps      sqlstore.Replicas        // per replica: its identity checks (identity.go)

	tables sqlstore.Tables // known to exist on the primary
}

var _ store.Store = (*Store)(nil)

// Open connects to the primary (and checks it answers), creates the catalog
// table if needed (with Options.Existing: checks that it exists), and prepares a pool per replica. Each replica that
// answers within the query timeout is checked to show the primary's rows
// (identity.go): one that does not fails Open. One that is down fails only
// the reads at its level, and is checked when it connects.
func Open(ctx context.Context, opts Options) (*Store, error) {
	s := &Store{
		timeout: opts.QueryTimeout,
		log:     opts.Logger,
	}
	if s.timeout <= 0 {
		s.timeout = DefaultQueryTimeout
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if err := s.connect(ctx, opts); err != nil {
		s.closePools()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	s.log.Debug("postgres store opened", "levels", s.levels)
	return s, nil
}

func (s *Store) connect(ctx context.Context, opts Options) error {
	primary, err := s.newPool(opts.DSN, opts.MaxConns, -1)
	if err != nil {
		return err
	}
	s.primary = primary
	s.levels = sqlstore.LevelNames(len(opts.ReplicaDSNs))
	s.reps.SetBreaker(opts.Breaker)
	for i, dsn := range opts.ReplicaDSNs {
		p, err := s.newPool(dsn, opts.MaxConns, i)
		if err != nil {
			return fmt.Errorf("replica %d: %w", i, err)
		}
		s.replicas = append(s.replicas, p)
	}
	if wait := opts.ReplicaWait; len(s.replicas) > 0 && wait >= 0 {
		if wait == 0 {
			wait = DefaultReplicaWait
		}
		s.fresh = newFreshness(s.primary, s.replicas, s.timeout, wait, s.reps.Open)
	}

	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if err := s.primary.Ping(qctx); err != nil {
		return s.classify(ctx, err)
	}
	if opts.Existing {
		if err := s.checkCatalog(qctx); err != nil {
			return s.classify(ctx, err)
		}
	} else {
		if err := s.ddl(qctx, createCatalogSQL); err != nil {
			return s.classify(ctx, err)
		}
		if err := s.ddl(qctx, migrateSQL); err != nil {
			return s.classify(ctx, err)
		}
	}
	s.warnIfNotDurable(qctx)
	vctx, vcancel := s.withTimeout(ctx)
	defer vcancel()
	return s.checkReplicasAtOpen(vctx)
}

// checkCatalog fails with ErrNoCatalog, saying where it looked and what
// to run, when the primary has no catalog table (Options.Existing).
func (s *Store) checkCatalog(ctx context.Context) error {
	var db, path string
	var schema *string
	var ok bool
	err := s.primary.QueryRow(ctx, "SELECT current_database(), current_schema(), current_setting('search_path'), to_regclass($1) IS NOT NULL",
		pgx.Identifier{catalogTable}.Sanitize()).Scan(&db, &schema, &path, &ok)
	switch {
	case err != nil:
		return err
	case schema == nil:
		return fmt.Errorf("%w: no table %s: the search_path (%s) of database %s names no schema that exists "+
			"(wail serve creates the table in the first schema of the search_path, which must exist): check the DSN's database and search_path",
			ErrNoCatalog, catalogTable, path, db)
	case !ok:
		return fmt.Errorf("%w: no table %s in schema %s of database %s (wail serve creates it at its first start): check the DSN's database and search_path",
			ErrNoCatalog, catalogTable, *schema, db)
	}
	return nil
}

// warnIfNotDurable names, at Open, a primary that acknowledges commits
// before they are on disk: fsync off on the server, or synchronous_commit
// off in wail's sessions (newPool sets it on; a pooler that drops startup
// parameters leaves the server's). A read then sees a write that a crash
// of the database can lose, and an event can carry a version the store
// no longer has. A failed check says nothing: Open goes on.
func (s *Store) warnIfNotDurable(ctx context.Context) {
	var fsync, syncCommit string
	err := s.primary.QueryRow(ctx, "SELECT current_setting('fsync'), current_setting('synchronous_commit')").Scan(&fsync, &syncCommit)
	if err == nil && (fsync != "on" || syncCommit == "off") {
		s.log.Warn("postgres: reads may see commits that are not durable yet; set fsync=on on the server, and synchronous_commit to on for wail's sessions (behind a pooler: for its role or database)",
			"fsync", fsync, "synchronous_commit", syncCommit)
	}
}

// newPool makes the pool of the primary (replica < 0) or of replica
// replica.
func (s *Store) newPool(dsn string, maxConns int32, replica int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err // pgx redacts the password in the DSN it quotes
	}
	cfg.MaxConns = maxConns
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	cc := cfg.ConnConfig
	if cc.ConnectTimeout <= 0 || cc.ConnectTimeout > s.timeout {
		cc.ConnectTimeout = s.timeout
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "wail"
	}
	// Every statement bounded inside the server too (see sessionBounds).
	for name, value := range sessionBounds(s.timeout) {
		if _, ok := cc.RuntimeParams[name]; !ok && !strings.Contains(cc.RuntimeParams["options"], name) {
			cc.RuntimeParams[name] = value
		}
	}
	// Statements are prepared on each connection (pgx's default mode,
	// cache_statement: a statement per table and kind of write or read,
	// planned once; Apply, ScanKeys and GetMany prepare theirs in their
	// bounded round trip, boundQuery), which a pooler in transaction mode
	// (PgBouncer before 1.21, or without max_prepared_statements) hands to
	// the wrong backend: behind one, the DSN says
	// default_query_exec_mode=cache_describe, and every statement is
	// unnamed (planned at each call).
	if replica < 0 {
		// Visible only once durable (see the package comment).
		cc.RuntimeParams["synchronous_commit"] = "on"
	} else {
		// Only a replica that shows the primary's rows (identity.go).
		s.reps.Add(s.levels[replica], hostPort(cc))
		cfg.AfterConnect = s.checkReplica(replica)
	}
	return pgxpool.NewWithConfig(context.Background(), cfg)
}

// sessionBounds are the settings of every session of the store's pools
// (unless the DSN sets them): no statement, lock wait or transaction left
// idle runs longer inside PostgreSQL than the store's query timeout, which
// bounds each call on the client's side (less a margin, so the server's
// error comes first: sqlstore.SessionBound). The client's bound alone holds
// only while the server hears of it (pgx sends a cancel request when a
// call's context ends): a process cut off from the database left its
// statements running there, a lock wait for as long as the lock was held,
// and a transaction open with its locks until TCP keepalive gave up on the
// connection. Writes, GetMany and ScanKeys set a tighter bound of their
// own, from the caller's deadline, local to their transaction (boundSQL).
func sessionBounds(timeout time.Duration) map[string]string {
	ms := strconv.FormatInt(max(sqlstore.SessionBound(timeout).Milliseconds(), 1), 10)
	return map[string]string{"statement_timeout": ms, "lock_timeout": ms, "idle_in_transaction_session_timeout": ms}
}

// acquire takes a connection of p, the pool of level, within ctx; a wait
// that ctx ended while every connection of p was in use says so
// (sqlstore.PoolFull).
func (s *Store) acquire(ctx context.Context, p *pgxpool.Pool, level string) (*pgxpool.Conn, error) {
	c, err := p.Acquire(ctx)
	if err != nil && ctx.Err() != nil {
		if st := p.Stat(); st.AcquiredConns() >= st.MaxConns() {
			return nil, sqlstore.PoolFull(level, int(st.MaxConns()), err)
		}
	}
	return c, err
}

// levelName is the name of the read level of pool p.
func (s *Store) levelName(p *pgxpool.Pool) string {
	for i, r := range s.replicas {
		if r == p {
			return s.levels[i]
		}
	}
	return "primary"
}

// Levels returns "replica-0", "replica-1", ... then "primary".
func (s *Store) Levels() []string { return append([]string(nil), s.levels...) }

func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// Close closes every pool; later calls return nil and every other operation
// fails with store.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.closePools()
	return nil
}

func (s *Store) closePools() {
	if s.fresh != nil {
		s.fresh.close()
	}
	for _, p := range append([]*pgxpool.Pool{s.primary}, s.replicas...) {
		if p != nil {
			p.Close()
		}
	}
}

// ReplicaWaits reports the replica reads that waited for their replica
// to catch up with the primary (see Options.ReplicaWait), and how many of
// them gave up after ReplicaWait and read a replica still behind.
func (s *Store) ReplicaWaits() (waited, stale uint64) {
	if s.fresh == nil {
		return 0, 0
	}
	return s.fresh.waited.Load(), s.fresh.stale.Load()
}

// awaitReplica holds a read at level until its replica covers the
// primary's position as of now, or ReplicaWait passes (no-op at the
// primary, or without the wait).
func (s *Store) awaitReplica(ctx context.Context, level store.Level) {
	if s.fresh != nil && level >= 0 && int(level) < len(s.replicas) {
		s.fresh.await(ctx, int(level), time.Now())
	}
}

// Check verifies that the primary and every replica answer and that the
// catalog table exists on each.
func (s *Store) Check(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("postgres: check: %w", store.ErrClosed)
	}
	var errs []error
	for i, name := range s.levels {
		admitted, err := s.reps.Admit(store.Level(i))
		if err != nil {
			errs = append(errs, fmt.Errorf("postgres: check %s: %w", name, err))
			continue
		}
		p, _ := sqlstore.Pool(store.Level(i), s.primary, s.replicas)
		qctx, cancel := s.withTimeout(ctx)
		var ok bool
		err = p.QueryRow(qctx, "SELECT to_regclass($1) IS NOT NULL", catalogTable).Scan(&ok)
		cancel()
		s.replicaDone(ctx, admitted, err) // a check probes an open breaker too
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("postgres: check %s: %w", name, s.classify(ctx, err)))
		case !ok:
			errs = append(errs, fmt.Errorf("postgres: check %s: no catalog table %s", name, catalogTable))
		}
	}
	return errors.Join(errs...)
}
