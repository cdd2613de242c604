package schemaregistry

import (
	"context"

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
// definitions live and is shared by every process sharing the store.
func Catalog(st store.CatalogReader) Storage {
	return store.CatalogEntry{Store: st, Name: CatalogEntry}
}
