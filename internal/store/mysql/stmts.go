package mysql

import (
	"context"
	"database/sql"

	"github.com/wail-cdc/wail/internal/store"
)

// Get runs a statement prepared once per read level and table: with
// interpolateParams=false an unprepared query costs a prepare, an execute
// and a close. database/sql prepares it again on each connection as needed.

type stmtKey struct {
	level store.Level
	table string
}

func getSQL(table string) string {
	return "SELECT value, version, deleted, schema_id FROM " + quote(tableName(table)) + " WHERE kh = ? AND k = ?"
}

// getStmt returns the Get statement of table at level, preparing it once.
func (s *Store) getStmt(ctx context.Context, db *sql.DB, level store.Level, table string) (*sql.Stmt, error) {
	k := stmtKey{level, table}
	s.stmtsMu.Lock()
	st := s.stmts[k]
	s.stmtsMu.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := db.PrepareContext(ctx, getSQL(table))
	if err != nil {
		return nil, err
	}
	s.stmtsMu.Lock()
	defer s.stmtsMu.Unlock()
	if old := s.stmts[k]; old != nil {
		_ = st.Close()
		return old, nil
	}
	s.stmts[k] = st
	return st, nil
}

// dropStmts forgets the statements of table (it was dropped), or all of
// them when table is "".
func (s *Store) dropStmts(table string) {
	s.stmtsMu.Lock()
	defer s.stmtsMu.Unlock()
	for k, st := range s.stmts {
		if table == "" || k.table == table {
			_ = st.Close()
			delete(s.stmts, k)
		}
	}
}
