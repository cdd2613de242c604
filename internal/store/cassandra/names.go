package cassandra

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"

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

// generationName returns the Cassandra table of generation gen of wail
// table name (a valid name): tableName's for generation 0 (the name of
// earlier releases), wailg<gen>_<name> after, or, when that is too long
// for Cassandra, wailgh<gen>_<first characters>_<16 hex characters of
// the name's SHA-256>. Distinct pairs of name and generation never share
// a table: the digits end at the first '_', and a name starts with a
// letter.
func generationName(name string, gen int64) string {
	if gen == 0 {
		n, _ := tableName(name)
		return n
	}
	g := strconv.FormatInt(gen, 10)
	n := "wailg" + g + "_" + name
	if len(n) > maxTableName {
		sum := sha256.Sum256([]byte(name))
		n = "wailgh" + g + "_" + name[:maxTableName-len("wailgh_")-len(g)-1-16] + "_" + hex.EncodeToString(sum[:8])
	}
	return n
}

// generationOfName returns the generation of wail table name whose
// Cassandra table cname is, if it is one.
func generationOfName(name, cname string) (int64, bool) {
	rest, ok := strings.CutPrefix(cname, "wailgh")
	if !ok {
		rest, ok = strings.CutPrefix(cname, "wailg")
	}
	digits, _, _ := strings.Cut(rest, "_")
	gen, err := strconv.ParseInt(digits, 10, 64)
	switch {
	case ok && err == nil && gen > 0 && generationName(name, gen) == cname:
		return gen, true
	case cname == generationName(name, 0):
		return 0, true
	}
	return 0, false
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
