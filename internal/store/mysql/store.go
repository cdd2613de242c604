// Package mysql is store.Store on MariaDB (10.11, the tested target) or
// MySQL 8, through database/sql and github.com/go-sql-driver/mysql, with
// optional replicas as the cheaper read levels.
//
// Schema (in the DSN's database):
//
//	CREATE TABLE wail_<name> (
//	  kh         BINARY(32)      NOT NULL PRIMARY KEY, -- SHA-256 of k
//	  k          VARBINARY(4096) NOT NULL,
//	  value      LONGBLOB        NOT NULL,             -- '' for a tombstone
//	  version    BIGINT          NOT NULL,
//	  deleted    BOOL            NOT NULL,
//	  updated_at TIMESTAMP(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
//	  schema_id  BIGINT          NOT NULL DEFAULT 0,    -- the value's schema (typed tables)
//	  doc        JSON            NULL                   -- the value as JSON (typed tables)
//	) ENGINE=InnoDB;
//	CREATE TABLE wail__catalog (name VARCHAR(64) PRIMARY KEY, spec LONGBLOB NOT NULL);
//	CREATE TABLE wail__leases (...); -- lease.go: proxy ids (package lease)
//
// The primary key is the SHA-256 of the row key (computed here): InnoDB
// index keys hold at most 3072 bytes and wail keys go up to 4 KiB. Names
// longer than 59 characters map to wailh_<first 40>_<hash> (MySQL allows 64).
//
// Apply runs one transaction per batch (READ COMMITTED), in which the
// conditional write is one statement:
//
//	INSERT INTO wail_<name> (kh, k, value, version, deleted, schema_id, doc) VALUES (?,?,?,?,?,?,?), ...
//	ON DUPLICATE KEY UPDATE
//	  value      = IF(VALUES(version) > version, VALUES(value), value),
//	  schema_id  = IF(VALUES(version) > version, VALUES(schema_id), schema_id),
//	  doc        = IF(VALUES(version) > version, VALUES(doc), doc),
//	  deleted    = IF(VALUES(version) > version, VALUES(deleted), deleted),
//	  updated_at = IF(VALUES(version) > version, CURRENT_TIMESTAMP(6), updated_at),
//	  version    = GREATEST(version, VALUES(version))
//
// MySQL evaluates the assignments left to right, each seeing the columns
// already assigned, so version is assigned last. VALUES() is what MariaDB
// understands; MySQL deprecated it in 8.0.20, and DialectMySQL8 (chosen
// for MySQL 8.0.19+ from SELECT VERSION()) writes the same with a row
// alias: VALUES (...) AS new ... IF(new.version > version, new.value, value).
//
// Around it: a plain read of the batch's versions before, and a locking read
// (SELECT ... FOR UPDATE, of rows the write has locked anyway) after. A key
// was applied when it holds the mutation's version afterwards and did not
// hold it before. The batch is deduplicated (highest version wins) and
// sorted by kh, so concurrent batches lock rows in one order; deadlocks and
// lock wait timeouts are retried.
//
// The write is bounded inside the server by the caller's deadline, less a
// margin (sqlstore.Budget): MariaDB runs it as SET STATEMENT
// max_statement_time=…, innodb_lock_wait_timeout=… FOR INSERT …; MySQL 8
// has no statement timeout for writes and sets the session's
// innodb_lock_wait_timeout (whole seconds) before it. Nothing commits
// before the COMMIT, which is sent only while the deadline has not passed,
// so Apply wraps store.ErrNotApplied for every error before it; an error
// of the COMMIT leaves the outcome unknown.
//
// Typed tables (DESIGN.md, "Queryable rows"): schema_id is the registry id
// of the schema the value was written with, doc the value as its
// message's Protobuf JSON, written by the same statement. Columns added by
// later versions are added to older tables at Open (migrate).
//
// Sessions run in strict mode (STRICT_ALL_TABLES added to the server's or
// the DSN's sql_mode): a value that does not fit its column is an error,
// never cut.
//
// Durability: InnoDB makes a commit visible before its redo log is flushed
// unless the binary log's two-phase commit is on. With log_bin,
// sync_binlog=1 and innodb_flush_log_at_trx_commit=1 (scripts/services.sh
// sets them) a visible commit has its prepare record and binlog event on
// disk, so crash recovery keeps it: Get never returns a write that is not
// durable. Open logs a warning when the server runs otherwise.
package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// Defaults for the zero fields of Options.
const (
	DefaultMaxConns     = 16
	DefaultQueryTimeout = 5 * time.Second
)

// Dialect selects the SQL for the conditional write.
type Dialect int

const (
	// DialectAuto detects the dialect from SELECT VERSION() at Open.
	DialectAuto Dialect = iota
	// DialectMariaDB uses VALUES(col) in ON DUPLICATE KEY UPDATE: MariaDB
	// and MySQL before 8.0.19.
	DialectMariaDB
	// DialectMySQL8 uses a row alias (VALUES (...) AS new ... new.col):
	// MySQL 8.0.19 and later, where VALUES() is deprecated.
	DialectMySQL8
)

// Options configures Open.
type Options struct {
	// DSN of the primary in the driver's form, e.g.
	// "wail:wail@tcp(127.0.0.1:3307)/wail". Open sets parseTime,
	// interpolateParams=false and maxAllowedPacket to the server's
	// max_allowed_packet (see limit.go).
	DSN string
	// ReplicaDSNs are read-only replicas, the cheaper read levels in order.
	ReplicaDSNs []string
	// MaxConns bounds each pool; 0 means 16.
	MaxConns int32
	// QueryTimeout bounds every operation, connecting included; 0 means 5s.
	QueryTimeout time.Duration
	// Dialect; DialectAuto (the zero value) detects it.
	Dialect Dialect
	// Breaker configures each replica's circuit breaker: reads at a
	// replica that keeps timing out or losing its connection go to the
	// next level at once for a while (sqlstore.Breaker).
	Breaker sqlstore.Breaker
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Existing opens the database as it is, for a check (wail doctor):
	// Open creates no table (neither the catalog nor wail__identity) and
	// migrates none, and fails with ErrNoCatalog when wail's catalog
	// table is not in the DSN's database.
	Existing bool
}

// ErrNoCatalog: Open with Options.Existing found no catalog table (wail
// never ran on this database, or the DSN names another).
var ErrNoCatalog = errors.New("no wail catalog")

// Store is a store.Store on MariaDB or MySQL. It is safe for concurrent use.
type Store struct {
	primary  *sql.DB
	replicas []*sql.DB
	levels   []string
	dialect  Dialect
	mariadb  bool // the server is MariaDB (not MySQL)
	packet   int  // the primary's max_allowed_packet, as Open read it (limit.go)
	timeout  time.Duration
	log      *slog.Logger
	closed   atomic.Bool

	maxConns int // of each pool

	primaryID atomic.Pointer[identity] // what the primary's reads show (identity.go)
	reps      sqlstore.Replicas        // per replica: its identity checks (identity.go)
	unmarked  []*atomic.Bool           // per replica: its last connection showed no identity

	tables sqlstore.Tables // known to exist on the primary
}

var _ store.Store = (*Store)(nil)

// Open connects to the primary (and checks it answers), detects the dialect,
// and creates the catalog table if needed (with Options.Existing: checks
// that it exists). Each replica that answers
// within the query timeout is checked to show the primary's rows
// (identity.go): one that does not fails Open. One that is down fails
// only the reads at its level, and is checked when it connects.
func Open(ctx context.Context, opts Options) (*Store, error) {
	s := &Store{
		dialect: opts.Dialect,
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
		return nil, fmt.Errorf("mysql: open: %w", err)
	}
	s.log.Debug("mysql store opened", "levels", s.levels, "dialect", s.dialect)
	return s, nil
}

func (s *Store) connect(ctx context.Context, opts Options) error {
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	version, packet, err := s.serverVersion(qctx, opts.DSN)
	if err != nil {
		return s.classify(ctx, err)
	}
	s.packet = packet
	if s.dialect == DialectAuto {
		s.dialect = detectDialect(version)
	}
	mariadb := strings.Contains(strings.ToLower(version), "mariadb")
	s.mariadb = mariadb
	s.maxConns = int(opts.MaxConns)
	if s.maxConns <= 0 {
		s.maxConns = DefaultMaxConns
	}
	s.levels = sqlstore.LevelNames(len(opts.ReplicaDSNs))
	s.reps.SetBreaker(opts.Breaker)
	if s.primary, err = s.newPool(opts.DSN, mariadb, -1); err != nil {
		return err
	}
	for i, dsn := range opts.ReplicaDSNs {
		p, err := s.newPool(dsn, mariadb, i)
		if err != nil {
			return fmt.Errorf("replica %d: %w", i, err)
		}
		s.replicas = append(s.replicas, p)
	}
	if opts.Existing {
		if err := s.checkCatalog(qctx); err != nil {
			return s.classify(ctx, err)
		}
	} else {
		if err := s.ddl(qctx, createCatalogSQL); err != nil {
			return s.classify(ctx, err)
		}
		if err := s.migrate(qctx); err != nil {
			return s.classify(ctx, err)
		}
	}
	s.warnIfNotDurable(qctx)
	vctx, vcancel := s.withTimeout(ctx)
	defer vcancel()
	if err := s.checkReplicasAtOpen(vctx, !opts.Existing); err != nil {
		return s.classify(ctx, err)
	}
	return nil
}

// checkCatalog fails with ErrNoCatalog, saying where it looked and what
// to run, when the primary's database has no catalog table
// (Options.Existing).
func (s *Store) checkCatalog(ctx context.Context) error {
	var db sql.NullString
	var n int
	err := s.primary.QueryRowContext(ctx, `SELECT DATABASE(), (SELECT COUNT(*) FROM information_schema.tables
 WHERE table_schema = DATABASE() AND table_name = ?)`, catalogTable).Scan(&db, &n)
	switch {
	case err != nil:
		return err
	case !db.Valid:
		return fmt.Errorf("%w: no table %s: the DSN names no database (wail serve creates the table in the DSN's database, which must exist): "+
			"add /<database> to the DSN", ErrNoCatalog, catalogTable)
	case n == 0:
		return fmt.Errorf("%w: no table %s in database %s (wail serve creates it at its first start): check the DSN's database",
			ErrNoCatalog, catalogTable, db.String)
	}
	return nil
}

// config parses dsn and sets what the store relies on.
func (s *Store) config(dsn string) (*mysql.Config, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err // the driver's messages do not quote the DSN
	}
	cfg.ParseTime = true
	cfg.InterpolateParams = false
	if s.packet > 0 {
		cfg.MaxAllowedPacket = s.packet // limit.go
	}
	if cfg.Timeout <= 0 || cfg.Timeout > s.timeout {
		cfg.Timeout = s.timeout // dial timeout
	}
	cfg.Logger = driverLog{s.log}
	return cfg, nil
}

// driverLog is the driver's logger: its messages (a pooled connection
// found dead and replaced, a packet cut short) went to stderr as
// unstructured "[mysql] ..." lines whatever the process's log format.
// They are the store's, at debug level: an error they describe that
// fails a call is that call's to return (TestDriverLogsThroughTheStore).
type driverLog struct{ log *slog.Logger }

func (l driverLog) Print(v ...any) { l.log.Debug("mysql driver: " + fmt.Sprint(v...)) }

// serverVersion asks a short-lived connection for the server's version
// and max_allowed_packet.
func (s *Store) serverVersion(ctx context.Context, dsn string) (version string, packet int, _ error) {
	cfg, err := s.config(dsn)
	if err != nil {
		return "", 0, err
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return "", 0, err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	err = db.QueryRowContext(ctx, "SELECT VERSION(), @@max_allowed_packet").Scan(&version, &packet)
	return version, packet, err
}

// newPool makes the pool of the primary (replica < 0) or of replica
// replica.
func (s *Store) newPool(dsn string, mariadb bool, replica int) (*sql.DB, error) {
	cfg, err := s.config(dsn)
	if err != nil {
		return nil, err
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	// UTC: the lease clock is UNIX_TIMESTAMP(NOW(6)), which a session
	// time zone with daylight saving makes go back an hour (the repeated
	// hour is ambiguous): a live proxy's lease would look expired.
	cfg.Params["time_zone"] = "'+00:00'"
	// Every statement bounded inside the server too (see sessionBounds).
	for name, value := range s.sessionBounds(mariadb) {
		if _, ok := cfg.Params[name]; !ok {
			cfg.Params[name] = value
		}
	}
	// Strict mode, whatever the server's or the DSN's sql_mode: without it
	// a key longer than the k column was silently cut, Apply said it was
	// applied, and no Get (which compares the whole key) ever found it.
	mode := "@@SESSION.sql_mode"
	if m, ok := cfg.Params["sql_mode"]; ok {
		mode = m
	}
	cfg.Params["sql_mode"] = "CONCAT(" + mode + ", ',STRICT_ALL_TABLES')"
	// READ COMMITTED: no gap locks, fewer deadlocks between batches.
	if mariadb {
		cfg.Params["tx_isolation"] = "'READ-COMMITTED'"
	} else {
		cfg.Params["transaction_isolation"] = "'READ-COMMITTED'"
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	if replica >= 0 {
		// Only a replica that shows the primary's rows (identity.go).
		s.reps.Add(s.levels[replica], cfg.Addr)
		s.unmarked = append(s.unmarked, new(atomic.Bool))
		conn = checkedConnector{Connector: conn, check: s.checkReplica(replica)}
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(s.maxConns)
	db.SetMaxIdleConns(s.maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	// A new connection now and then, as pgxpool's: one of a busy replica
	// pool is checked again (identity.go), and a host name that moved
	// (a failover) is followed.
	db.SetConnMaxLifetime(time.Hour)
	return db, nil
}

// sessionBounds are the settings of every session of the store's pools
// (unless the DSN sets them): no lock wait, and on MariaDB no statement,
// lasts longer inside the server than the store's query timeout, less a
// margin (sqlstore.SessionBound), which bounds each call on the client's
// side. The driver only closes its connection when a call gives up: a
// statement whose server did not see the connection go (a network cut
// off, a host frozen) went on waiting for a row lock (an autocommit
// catalog swap or lease renewal, which then committed after its caller
// was told it failed) for innodb_lock_wait_timeout (50 s by default), or
// for a metadata lock (DDL, and every statement on the table queued
// behind it) for lock_wait_timeout (a day by default). Writes, reads
// (Get, GetMany, ScanKeys) and DDL set a tighter bound of their own (bound, boundedRead,
// boundDDL). MySQL 8 bounds only SELECTs by time (max_execution_time).
func (s *Store) sessionBounds(mariadb bool) map[string]string {
	bound := sqlstore.SessionBound(s.timeout)
	secs := strconv.FormatInt(int64(math.Ceil(bound.Seconds())), 10)
	params := map[string]string{"lock_wait_timeout": secs, "innodb_lock_wait_timeout": secs}
	if mariadb {
		params["max_statement_time"] = strconv.FormatFloat(max(bound, time.Millisecond).Seconds(), 'f', 3, 64)
	} else {
		params["max_execution_time"] = strconv.FormatInt(max(bound.Milliseconds(), 1), 10)
	}
	return params
}

// detectDialect picks the dialect for a SELECT VERSION() string such as
// "10.11.6-MariaDB-0+deb12u1" or "8.0.36".
func detectDialect(version string) Dialect {
	if strings.Contains(strings.ToLower(version), "mariadb") {
		return DialectMariaDB
	}
	var nums [3]int
	for i, part := range strings.SplitN(strings.SplitN(version, "-", 2)[0], ".", 3) {
		nums[i], _ = strconv.Atoi(part)
	}
	if nums[0] > 8 || nums[0] == 8 && (nums[1] > 0 || nums[2] >= 19) {
		return DialectMySQL8
	}
	return DialectMariaDB
}

func (d Dialect) String() string {
	switch d {
	case DialectMariaDB:
		return "mariadb"
	case DialectMySQL8:
		return "mysql8"
	}
	return "auto"
}

func (s *Store) warnIfNotDurable(ctx context.Context) {
	var flush, logBin, syncBinlog int
	err := s.primary.QueryRowContext(ctx, "SELECT @@innodb_flush_log_at_trx_commit, @@log_bin, @@sync_binlog").
		Scan(&flush, &logBin, &syncBinlog)
	if err == nil && (flush != 1 || logBin != 1 || syncBinlog != 1) {
		s.log.Warn("mysql: reads may see commits that are not durable yet; set log_bin, sync_binlog=1 and innodb_flush_log_at_trx_commit=1",
			"innodb_flush_log_at_trx_commit", flush, "log_bin", logBin, "sync_binlog", syncBinlog)
	}
}

// conn takes a connection of db, the pool of level, within ctx; a wait
// that ctx ended while every connection of db was in use says so
// (sqlstore.PoolFull).
func (s *Store) conn(ctx context.Context, db *sql.DB, level string) (*sql.Conn, error) {
	c, err := db.Conn(ctx)
	if err != nil && ctx.Err() != nil {
		if st := db.Stats(); st.MaxOpenConnections > 0 && st.InUse >= st.MaxOpenConnections {
			return nil, sqlstore.PoolFull(level, st.MaxOpenConnections, err)
		}
	}
	return c, err
}

// read runs the read q on a connection of db (conn: a wait for one of
// a full pool says so) and hands its rows to scan; as db.QueryContext
// does, it tries again on another connection, twice at most, when the
// driver found the connection broken before sending q
// (driver.ErrBadConn).
func (s *Store) read(ctx context.Context, db *sql.DB, q string, scan func(*sql.Rows) error) error {
	for try := 0; ; try++ {
		c, err := s.conn(ctx, db, s.levelName(db))
		if err != nil {
			return err
		}
		rows, err := c.QueryContext(ctx, q)
		if err == nil {
			err = scan(rows)
			if cerr := rows.Close(); err == nil {
				err = cerr
			}
		}
		_ = c.Close()
		if !errors.Is(err, driver.ErrBadConn) || try == 2 || ctx.Err() != nil {
			return err
		}
	}
}

// scanRow scans the one row rows holds into dest, or returns
// sql.ErrNoRows (as sql.Row.Scan).
func scanRow(rows *sql.Rows, dest ...any) error {
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	return rows.Scan(dest...)
}

// levelName is the name of the read level of pool db.
func (s *Store) levelName(db *sql.DB) string {
	for i, r := range s.replicas {
		if r == db {
			return s.levels[i]
		}
	}
	return "primary"
}

// Levels returns "replica-0", "replica-1", ... then "primary".
func (s *Store) Levels() []string { return append([]string(nil), s.levels...) }

// Dialect returns the dialect in use.
func (s *Store) Dialect() Dialect { return s.dialect }

func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// Close closes every pool; later calls return nil and every other operation
// fails with store.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.closePools()
}

func (s *Store) closePools() error {
	var errs []error
	for _, db := range append([]*sql.DB{s.primary}, s.replicas...) {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mysql: close: %w", err)
	}
	return nil
}

// Check verifies that the primary and every replica answer and have the
// catalog table.
func (s *Store) Check(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("mysql: check: %w", store.ErrClosed)
	}
	var errs []error
	for i, name := range s.levels {
		admitted, err := s.reps.Admit(store.Level(i))
		if err != nil {
			errs = append(errs, fmt.Errorf("mysql: check %s: %w", name, err))
			continue
		}
		db, _ := sqlstore.Pool(store.Level(i), s.primary, s.replicas)
		qctx, cancel := s.withTimeout(ctx)
		var n int
		err = db.QueryRowContext(qctx, "SELECT COUNT(*) FROM "+quote(catalogTable)).Scan(&n)
		cancel()
		s.replicaDone(ctx, admitted, err) // a check probes an open breaker too
		if err != nil {
			errs = append(errs, fmt.Errorf("mysql: check %s: %w", name, s.classify(ctx, err)))
		}
	}
	return errors.Join(errs...)
}
