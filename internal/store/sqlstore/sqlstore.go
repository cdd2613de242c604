// Package sqlstore holds what the SQL stores (postgres, mysql) share and
// does not depend on a driver: how a wail table is named in SQL, which
// mutations of a batch win and what each one did, retrying a write that
// lost a lock race, how long the database may work on a write (Budget),
// the table cache, read levels and what a read returns.
package sqlstore

import (
	"crypto/sha256"
	"encoding/hex"
)

// Prefixes of the SQL table names (the fifth byte, '_' or 'h', tells the
// two forms apart).
const (
	RowPrefix  = "wail_"
	LongPrefix = "wailh_"
)

// TableName returns the SQL name of a wail table that passed
// store.ValidateTableName, for a database whose identifiers are at most
// maxIdent bytes. Distinct names give distinct SQL names: short ones are
// wail_<name>, long ones wailh_<first 40 bytes>_<hash>, since databases
// silently truncate (PostgreSQL) or reject (MySQL) longer identifiers.
func TableName(name string, maxIdent int) string {
	n := RowPrefix + name
	if len(n) > maxIdent {
		sum := sha256.Sum256([]byte(name))
		n = LongPrefix + name[:40] + "_" + hex.EncodeToString(sum[:8])
	}
	return n
}

// NotNull returns b, or an empty slice for nil: the drivers send a nil
// []byte as NULL, and the stores' columns are NOT NULL.
func NotNull(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
