package store

import (
	"context"
	"fmt"
)

// CatalogReader is a store's table catalog, read and changed by
// compare-and-set.
type CatalogReader interface {
	Tables(ctx context.Context) ([]Table, error)
	CatalogSwapper
}

// CatalogEntry is a document kept as one entry of a store's table catalog
// under a reserved name (ReservedPrefix: never a table), changed only by
// compare-and-set (Swap): it lives wherever the tables' definitions live
// (Pebble, PostgreSQL, MySQL, Cassandra), every process sharing the store
// sees the same document, and two changes at once never lose one another.
// The schema registry's document and the bearer tokens of
// security.auth.tokens_source catalog are such entries.
type CatalogEntry struct {
	Store CatalogReader
	Name  string
}

// Load reads the document (nil: none saved yet).
func (e CatalogEntry) Load(ctx context.Context) ([]byte, error) {
	rows, err := e.Store.Tables(ctx)
	if err != nil {
		return nil, fmt.Errorf("catalog entry %s: load: %w", e.Name, err)
	}
	for _, r := range rows {
		if r.Name == e.Name {
			return r.Spec, nil
		}
	}
	return nil, nil
}

// Swap saves new if the stored document is exactly old (nil: none; new
// nil deletes it) and reports whether it did; swaps are linearizable
// across every process sharing the store.
func (e CatalogEntry) Swap(ctx context.Context, old, new []byte) (bool, error) {
	_, ok, err := e.Store.SwapTable(ctx, e.Name, old, new)
	if err != nil {
		return false, fmt.Errorf("catalog entry %s: save: %w", e.Name, err)
	}
	return ok, nil
}
