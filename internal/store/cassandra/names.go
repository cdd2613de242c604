package cassandra

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"

	"github.com/gocql/gocql"

	"github.com/wail-cdc/wail/internal/store"
)

// Cassandra table names are at most 48 characters of [A-Za-z0-9_].
const maxTableName = 48

// catalogTable holds the table catalog. Its double underscore cannot come
// out of tableName: a wail name starts with a letter.
const catalogTable = "wail__catalog"

// tableName returns the Cassandra table of a wail table: wail_<name>, or,
// for names too long for Cassandra, wailh_<first 25 characters>_<16 hex
// characters of the name's SHA-256>, so distinct wail names never share a
// table. It fails for an invalid wail name.
func tableName(name string) (string, error) {
	if err := store.ValidateTableName(name); err != nil {
		return "", err
	}
	n := "wail_" + name
	if len(n) > maxTableName {
		sum := sha256.Sum256([]byte(name))
		n = "wailh_" + name[:maxTableName-6-1-16] + "_" + hex.EncodeToString(sum[:8])
	}
	return n, nil
}

var keyspaceName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)

// validateKeyspace accepts lower-case keyspace names Cassandra takes
// unquoted.
func validateKeyspace(ks string) error {
	if !keyspaceName.MatchString(ks) {
		return fmt.Errorf("keyspace %q: use 1-48 lower-case letters, digits or '_', starting with a letter", ks)
	}
	return nil
}

// tableID is the id every wail process gives a table it creates
// (CREATE TABLE ... WITH ID): derived from the keyspace and the table, so
// that two processes creating the same table at once, on different
// coordinators, create the same table rather than two with different ids
// (which Cassandra's schema merge cannot reconcile).
func tableID(keyspace, table string) gocql.UUID {
	sum := sha256.Sum256([]byte("wail/cassandra/table/" + keyspace + "." + table))
	var u gocql.UUID
	copy(u[:], sum[:16])
	u[6] = u[6]&0x0f | 0x80 // version 8: a name-based id of our own (RFC 9562)
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u
}
