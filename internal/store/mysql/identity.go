package mysql

import (
	"context"
	"crypto/rand"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/go-sql-driver/mysql"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// Replica identity. A read at a replica level is worth something only if
// the replica shows the primary's rows: a DSN that names another server
// (not a replica of the primary), or another database (of the primary's
// server, or of a replica), serves rows the primary never had, and misses
// the ones it has. The resolver would publish them.
//
// MariaDB and MySQL replicate rows, not files, and nothing every server
// lets any user read says whose replica a server is (SHOW REPLICA STATUS
// needs a privilege wail's user seldom has, MariaDB has no server_uuid,
// and a replica may rename the database: replicate-rewrite-db). So the
// primary's data says it: Open writes, once, a random identity into
// wail__identity in the primary's database (INSERT IGNORE of a value made
// here, so statement-based replication copies the very value), and every
// replica of that database has it as soon as it has replayed that far.
//
// Every connection of a replica pool is checked as it is made (a
// driver.Connector around the driver's: at Open and whenever the pool
// reconnects, after a restart, a failover behind the DSN's host name, an
// idle connection closed), by one query: @@server_id, DATABASE() and the
// replica's wail__identity. It is refused when
//   - its identity is not the primary's (another wail database: of another
//     server, or another database of the primary's server);
//   - its DSN names no database;
//   - it is the primary's server (the primary's server_id: a replica
//     cannot have its source's) reading another database than the
//     primary's.
//
// A replica without the identity (it has not replayed its creation yet,
// or its database is not a wail database) is not refused: its reads find
// no table, or rows the primary has; Open logs a warning. What cannot be
// told apart: a copy of the primary's database restored elsewhere (a
// backup) has the primary's identity, as a PostgreSQL base backup has its
// system identifier.
//
// A connection that does not match is closed, and the replica refused:
// for sqlstore.RefusedRecheck, reads at its level fail at once with the reason
// (store.ErrUnavailable: the resolver reads the next level), Check
// reports it, ReplicasRefused counts it, and the store logs it once, at
// error level, saying what to fix; its idle connections are dropped.
// After sqlstore.RefusedRecheck a read tries a new connection, which is checked
// again: a fixed DSN (or a server put back) needs no restart. Open
// refuses a replica that answers and does not match.

const (
	identityTable = "wail__identity"
	// identitySQL reads what a connection's reads show.
	identitySQL = "SELECT @@server_id, DATABASE(), (SELECT id FROM `" + identityTable + "` WHERE one = 1)"
	// identityNoTableSQL is identitySQL for a database without the table,
	// or for no database.
	identityNoTableSQL = "SELECT @@server_id, DATABASE(), NULL"
)

var createIdentitySQL = `CREATE TABLE IF NOT EXISTS ` + quote(identityTable) + ` (
  one TINYINT     NOT NULL PRIMARY KEY,
  id  VARCHAR(64) NOT NULL
) ENGINE=InnoDB`

// identity is what a connection's reads show.
type identity struct {
	serverID uint64
	db       string // "": the DSN names none
	marker   string // the database's wail__identity; "": none
}

// differs says how got (a replica's) differs from want (the primary's),
// or "" when got may show the primary's rows.
func (want identity) differs(got identity) string {
	switch {
	case got.marker != "" && got.marker != want.marker:
		return fmt.Sprintf("its wail identity (%s) is %s, the primary's %s: it reads another wail database "+
			"(of another server, or another database than the primary's)", identityTable, got.marker, want.marker)
	case got.db == "":
		return "its DSN names no database"
	case got.serverID == want.serverID && got.db != want.db:
		return fmt.Sprintf("it is the primary's server (server_id %d) reading database %q, the primary's database is %q",
			got.serverID, got.db, want.db)
	}
	return ""
}

// markIdentity gives the primary's database its identity, unless it has
// one (or mark is false: Options.Existing), and returns what the
// primary's reads show.
func (s *Store) markIdentity(ctx context.Context, mark bool) (identity, error) {
	if mark {
		if err := s.ddl(ctx, createIdentitySQL); err != nil {
			return identity{}, err
		}
		var b [16]byte
		_, _ = rand.Read(b[:])
		if _, err := s.primary.ExecContext(ctx, "INSERT IGNORE INTO "+quote(identityTable)+" (one, id) VALUES (1, '"+hex.EncodeToString(b[:])+"')"); err != nil {
			return identity{}, err
		}
	}
	conn, err := s.primary.Conn(ctx)
	if err != nil {
		return identity{}, err
	}
	defer conn.Close()
	var id identity
	err = conn.Raw(func(c any) error {
		var err error
		id, err = readIdentity(ctx, c.(driver.Conn))
		return err
	})
	if err == nil && id.marker == "" && mark {
		err = errors.New("the primary's " + identityTable + " is empty")
	}
	return id, err
}

// readIdentity runs identitySQL on c.
func readIdentity(ctx context.Context, c driver.Conn) (identity, error) {
	q, ok := c.(driver.QueryerContext)
	if !ok {
		return identity{}, errors.New("the driver's connection runs no query")
	}
	read := func(sql string) (identity, error) {
		rows, err := q.QueryContext(ctx, sql, nil)
		if err != nil {
			return identity{}, err
		}
		defer rows.Close()
		v := make([]driver.Value, 3)
		if err := rows.Next(v); err != nil {
			if err == io.EOF {
				err = errors.New("no row")
			}
			return identity{}, err
		}
		str := func(x driver.Value) string {
			switch x := x.(type) {
			case []byte:
				return string(x)
			case string:
				return x
			case nil:
				return ""
			}
			return fmt.Sprint(x)
		}
		sid, err := strconv.ParseUint(str(v[0]), 10, 64)
		if err != nil {
			return identity{}, fmt.Errorf("server_id %v: %w", v[0], err)
		}
		return identity{serverID: sid, db: str(v[1]), marker: str(v[2])}, nil
	}
	id, err := read(identitySQL)
	var me *mysql.MySQLError
	// No table, or no database to look in (a DSN that names none, which
	// differs refuses: TestReplicaNamesNoDatabase).
	if errors.As(err, &me) && (me.Number == errNoSuchTable || me.Number == errNoDatabase) {
		id, err = read(identityNoTableSQL)
	}
	if err != nil {
		return identity{}, fmt.Errorf("read the server's identity (%s): %w", identityTable, err)
	}
	return id, nil
}

// checkedConnector checks every connection it makes (checkReplica).
type checkedConnector struct {
	driver.Connector
	check func(context.Context, driver.Conn) error
}

func (c checkedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.check(ctx, conn); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return conn, nil
}

// checkReplica refuses a connection of replica i whose reads do not show
// the primary's rows.
func (s *Store) checkReplica(i int) func(context.Context, driver.Conn) error {
	return func(ctx context.Context, c driver.Conn) error {
		want := s.primaryID.Load()
		if want == nil {
			return nil // Open has not read the primary's yet; it checks the replicas after
		}
		got, err := readIdentity(ctx, c)
		if err != nil {
			return err
		}
		s.unmarked[i].Store(got.marker == "")
		if why := want.differs(got); why != "" {
			err, first := s.reps.Refuse(i, why)
			if first {
				s.log.Error("mysql: "+err.Error(), "level", err.Level)
				go s.dropIdle(i) // the connections it had (made before it changed)
			}
			return err
		}
		if s.reps.Accept(i) {
			s.log.Info("mysql: replica shows the primary's rows again; reading it", "level", s.levels[i], "addr", s.reps.Addr(i))
		}
		return nil
	}
}

// dropIdle closes the idle connections of replica i.
func (s *Store) dropIdle(i int) {
	s.replicas[i].SetMaxIdleConns(0)
	s.replicas[i].SetMaxIdleConns(s.maxConns)
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

// checkReplicasAtOpen marks (unless mark is false) and reads the
// primary's identity, then makes
// a connection to each replica (all at once, bounded by ctx), which
// checks it: a replica that answers and is not ours fails Open; one that
// does not answer is left to be checked when it does.
func (s *Store) checkReplicasAtOpen(ctx context.Context, mark bool) error {
	id, err := s.markIdentity(ctx, mark)
	if err != nil {
		return err
	}
	s.primaryID.Store(&id)
	return sqlstore.CheckAtOpen(len(s.replicas), func(i int) error {
		c, err := s.replicas[i].Conn(ctx)
		if err != nil {
			return err
		}
		_ = c.Close()
		if s.unmarked[i].Load() {
			s.log.Warn("mysql: replica does not show the primary's identity ("+identityTable+") yet: "+
				"it has not replayed it, or it is not a replica of the primary's database; its reads are used",
				"level", s.levels[i], "addr", s.reps.Addr(i))
		}
		return nil
	}, func(i int, err error) {
		s.log.Warn("mysql: replica not reached at open; it is checked when it answers", "level", s.levels[i], "err", err)
	})
}
