package schemaregistry

import (
	"context"
	"fmt"

	"github.com/wail-cdc/wail/internal/store"
)

// Storage keeps the registry's document durably. The whole registry is one
// document changed by compare-and-set, so processes sharing a Storage agree
// on every id and version without a leader.
type Storage interface {
	// Load returns the document (nil: none saved yet).
	Load(ctx context.Context) ([]byte, error)
	// Swap saves new if the stored document is exactly old (nil: none);
	// it reports whether it did. Swaps are linearizable across every
	// process sharing the storage.
	Swap(ctx context.Context, old, new []byte) (swapped bool, err error)
}

// CatalogEntry is the catalog entry the registry's document lives in, in
// the store's table catalog (a reserved name: never a table).
const CatalogEntry = store.ReservedPrefix + "schema_registry"

// Catalog is the Storage of a wail store: the document is one entry of the
// store's table catalog (CatalogEntry), so it lives wherever the tables'
// definitions live (Pebble, PostgreSQL, MySQL, Cassandra) and is shared by
// every process sharing the store.
type Catalog struct {
	Store interface {
		Tables(ctx context.Context) ([]store.Table, error)
		store.CatalogSwapper
	}
}

// Load reads the entry.
func (c Catalog) Load(ctx context.Context) ([]byte, error) {
	rows, err := c.Store.Tables(ctx)
	if err != nil {
		return nil, fmt.Errorf("schema registry: load: %w", err)
	}
	for _, r := range rows {
		if r.Name == CatalogEntry {
			return r.Spec, nil
		}
	}
	return nil, nil
}

// Swap swaps the entry.
func (c Catalog) Swap(ctx context.Context, old, new []byte) (bool, error) {
	_, ok, err := c.Store.SwapTable(ctx, CatalogEntry, old, new)
	if err != nil {
		return false, fmt.Errorf("schema registry: save: %w", err)
	}
	return ok, nil
}
