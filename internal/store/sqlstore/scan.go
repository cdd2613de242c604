package sqlstore

import (
	"crypto/sha256"

	"github.com/wail-cdc/wail/internal/store"
)

// ScanFrom checks the arguments of a store.Scanner page and returns the
// primary key the page starts after: the SHA-256 of after (the SQL stores'
// kh column), or an empty value, below every hash, for the first page.
func ScanFrom(table string, after []byte, limit int) ([]byte, error) {
	switch {
	case limit <= 0:
		return nil, store.ErrBadLimit
	case store.ValidateTableName(table) != nil:
		return nil, store.ErrUnknownTable
	case after == nil:
		return []byte{}, nil
	}
	sum := sha256.Sum256(after)
	return sum[:], nil
}
