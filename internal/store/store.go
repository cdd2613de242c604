// Package store defines what wail needs from the database that holds the
// rows: conditional last-writer-wins writes on a version, versioned
// tombstones, reads at one of several consistency levels, and the table
// catalog. Implementations live in sub-packages (pebble, and at scale the SQL
// and Cassandra stores) and all pass the acceptance suite in storetest.
package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Sentinel errors. Implementations wrap them with %w.
var (
	// ErrUnknownTable: the table was never created in this store.
	ErrUnknownTable = errors.New("unknown table")
	// ErrUnavailable: the store cannot be reached right now; retry later.
	ErrUnavailable = errors.New("store unavailable")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
	// ErrNotApplied: an Apply that failed definitely did not take effect
	// and never will: it was never sent, or the database answered that it
	// rolled the write back (an error in the statement, its own lock or
	// statement timeout, a deadlock that outlasted the retries). Apply
	// wraps it only when it is sure. Any other Apply error leaves the
	// outcome unknown (the caller's deadline, a connection lost mid-write):
	// the write may have committed, or may still commit until the bound
	// the database puts on it (see Store.Apply) runs out.
	ErrNotApplied = errors.New("write not applied")
	// ErrStorage: the store's own storage failed (disk full, an I/O error,
	// a storage engine panic) and the durability of its recent writes is
	// unknown. The store has stopped for good: every later call fails with
	// it and never returns a write that may not be durable. Do not retry on
	// the same store; the process must restart, and recovery keeps exactly
	// the durable writes.
	ErrStorage = errors.New("storage failed")
)

// Mutation is one conditional write: it takes effect only if Version is
// greater than the version the key holds (or the key is absent).
type Mutation struct {
	Key     []byte
	Value   []byte // ignored for deletes
	Version uint64
	Delete  bool // write a tombstone at Version
	// SchemaID is the registry id of the schema the value was written
	// with (typed tables; 0: none). Kept with the row and returned by Get,
	// so that the row's event names the schema its value was checked
	// against, not whatever schema is latest when it is published.
	SchemaID uint32
	// Doc is the value as JSON text (typed tables: protojson of the
	// value), for a store that keeps a queryable copy of it
	// (DocumentStore); others ignore it. nil: none.
	Doc []byte
}

// DocumentStore is a store that keeps Mutation.Doc in a column other
// applications can query with plain SQL (PostgreSQL jsonb, MySQL JSON),
// written by the same statement as the row. The server converts typed
// values to JSON only for such a store.
type DocumentStore interface {
	// KeepsDocuments reports whether Apply stores Mutation.Doc.
	KeepsDocuments() bool
}

// Outcome is what a Mutation did.
type Outcome struct {
	// Applied is true when the store now holds the mutation's version.
	Applied bool
	// Current is the version the key holds after the write (the mutation's
	// own when Applied, the newer one that won otherwise). Stores that
	// cannot tell cheaply report 0 when not applied.
	Current uint64
}

// Row is the state of a key.
type Row struct {
	Value   []byte
	Version uint64
	Deleted bool // a tombstone: Value is empty
	// SchemaID is the Mutation's that wrote the row (0 for tombstones,
	// untyped rows and rows written before stores kept it).
	SchemaID uint32
}

// Level is a read consistency level: index 0 is the cheapest (a replica,
// consistency ONE), the last is the strongest (the primary, QUORUM).
type Level int

// Table is the catalog entry of a table, as a store keeps it.
type Table struct {
	Name string
	// Spec is the encoded table definition (owned by package catalog).
	Spec []byte
}

// Store is the contract every backend implements.
type Store interface {
	// CreateTable makes room for a table's rows; idempotent.
	CreateTable(ctx context.Context, table string) error
	// Apply writes mutations conditionally (last writer wins on version).
	// Mutations may be applied in any order; one Outcome per mutation.
	// On error the outcome is unknown unless the error wraps ErrNotApplied.
	// A store whose writes can outlive the call (a database that goes on
	// with a statement its client gave up on) bounds the write inside the
	// database by ctx's deadline, so that it cannot commit after it; what
	// such a bound cannot cover (the delay before the statement starts, a
	// slow commit) is documented by the store.
	Apply(ctx context.Context, table string, muts []Mutation) ([]Outcome, error)
	// Get reads a key at a consistency level; found is false for keys never
	// written. A tombstone is found, with Deleted set. Get must never return
	// a write that is not yet durable (whose Apply has not returned): the
	// resolver publishes what it reads, and an event must not outlive the
	// state it carries if the store crashes.
	Get(ctx context.Context, table string, key []byte, level Level) (row Row, found bool, err error)
	// Levels returns the names of the read levels, cheapest first; at least one.
	Levels() []string
	// SaveTable and Tables persist the table catalog. SaveTable replaces an
	// entry unconditionally; the catalog itself changes entries only with
	// SwapTable.
	SaveTable(ctx context.Context, t Table) error
	Tables(ctx context.Context) ([]Table, error)
	CatalogSwapper
	TableDropper
	Close() error
}

// MultiGetter is a store that reads many keys of a table in one call:
// the resolver reads the keys of a resolution round with it (Pebble
// implements it; the resolver reads the keys of other stores one Get
// each).
type MultiGetter interface {
	// GetMany reads keys of table at level, each exactly as Get would
	// (never a write that is not yet durable), and returns one KeyRead
	// per key, in the order of keys. A failure of one key's read (a
	// corrupt row) is in its KeyRead; an error that stops the whole read
	// (an unknown table, a bad level, the store closed or failed, ctx
	// done) is returned, with no KeyRead.
	GetMany(ctx context.Context, table string, keys [][]byte, level Level) ([]KeyRead, error)
}

// KeyRead is the answer of GetMany for one key: what Get returns.
type KeyRead struct {
	Row   Row
	Found bool
	Err   error
}

// MutationLimiter is a store that refuses rows above a size (Cassandra:
// its request frame and mutation limits; MariaDB/MySQL: the server's
// max_allowed_packet). The proxy refuses a larger mutation before
// stamping it, with an error that names the limit, instead of logging an
// intent the store then refuses (an ABORT, and a client told to retry
// what can never be stored).
type MutationLimiter interface {
	// MutationLimit returns the largest len(Key)+len(Value) of a
	// Mutation that Apply takes, which is also the largest len(Doc), and
	// what sets it, for messages.
	MutationLimit() (bytes int, source string)
}

// KeyVersion is a key as a scan lists it: its version and whether it is a
// tombstone, without the value.
type KeyVersion struct {
	Key     []byte
	Version uint64
	Deleted bool
}

// Scanner is a store that can list a table's keys with their versions, in
// pages: what `wail table reconcile` compares with the event bus. Pebble,
// PostgreSQL and MySQL implement it.
//
// Keys come in an order the store chooses (Pebble: key order; the SQL
// stores: the order of the key's SHA-256, their primary key) that never
// changes. A page starts after the key given (nil: at the first key), so
// a scan that passes each page's last key to the next call returns every
// key that exists for the whole scan exactly once, whatever is written
// meanwhile; a key created or deleted during the scan may or may not be
// seen, and a version may be newer than when the scan began. Reads go to
// the primary. A version listed may belong to a write whose Apply has not
// returned yet: read a key with Get at the strongest level before
// publishing anything about it. A page holds at most limit keys (values are
// never read), so memory is bounded by limit times the largest key.
type Scanner interface {
	// ScanKeys returns up to limit keys of table after the key after
	// (ErrUnknownTable when the table does not exist). Fewer than limit
	// means the scan is complete.
	ScanKeys(ctx context.Context, table string, after []byte, limit int) ([]KeyVersion, error)
}

// ErrBadLimit: a scan asked for no keys (limit <= 0).
var ErrBadLimit = errors.New("scan limit must be positive")

// CatalogSwapper changes catalog entries atomically, so that processes
// sharing a store agree on one definition per table.
type CatalogSwapper interface {
	// SwapTable replaces the catalog entry name with new if it holds
	// exactly old: old nil means "if absent" (create), new nil means
	// "delete". It reports whether it swapped, and the entry it found
	// when it did not (nil: absent). A present entry is never empty.
	// Swaps of one name are linearizable across every process sharing
	// the store.
	SwapTable(ctx context.Context, name string, old, new []byte) (current []byte, swapped bool, err error)
}

// TableDropper removes a table's rows and the room CreateTable made for
// them; idempotent (dropping an unknown table is not an error). Applies and
// reads of the table fail with ErrUnknownTable afterwards, until it is
// created again (then empty). The catalog entry is not touched.
type TableDropper interface {
	DropTable(ctx context.Context, table string) error
}

// FencedDropper is a TableDropper that can drop a table's rows only while
// its catalog entry is the one a drop removes, checked atomically with the
// drop (PostgreSQL: in the DROP's transaction, the entry's row locked). A
// drop by name that arrived late (two processes dropped the table, the
// slower one paused) dropped the rows of a table created again under the
// name since, acknowledged writes with them; the catalog drops through it
// when the store has it (catalog.remove).
type FencedDropper interface {
	// DropTableIf drops table as DropTable does if the catalog entry of
	// its name holds exactly spec; dropped false: it holds something
	// else or nothing, and nothing was dropped.
	DropTableIf(ctx context.Context, table string, spec []byte) (dropped bool, err error)
}

// PinnedDropper is a TableDropper whose drops can be pinned to the room a
// table has at one moment (Cassandra: the table's generation, which each
// drop moves on, and its Cassandra table): a drop with the pin drops that
// room and never one the table got after it. The catalog reads the pin
// once the table's entry is marked deleting (no table of the name can be
// created again while it is) and saves it in the entry by a swap from the
// entry it read, and every drop of the entry drops with that pin: a drop
// by name that arrived late (two processes dropped the table, the slower
// one paused) dropped the room of a table created again under the name
// since, acknowledged writes with it. The catalog drops through it when
// the store has it and the entry holds a pin (catalog.remove).
type PinnedDropper interface {
	// DropPin returns what identifies the room table has now (never
	// empty), whether or not it exists.
	DropPin(ctx context.Context, table string) ([]byte, error)
	// DropTablePinned drops, as DropTable does, the room of table that
	// pin (from DropPin) identifies, and never a room the table got after
	// it; idempotent. A pin it cannot read fails with ErrBadPin.
	DropTablePinned(ctx context.Context, table string, pin []byte) error
}

// ErrBadPin: a pin a PinnedDropper cannot drop with (damaged: not one
// its DropPin returns).
var ErrBadPin = errors.New("not a drop pin of this store")

var tableName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// ReservedPrefix begins the names of catalog entries that are not tables
// (ValidateTableName never accepts it): other durable state kept with the
// table catalog, such as the schema registry's (package schemaregistry).
// Whatever lists tables skips them (IsTableEntry).
const ReservedPrefix = "_"

// IsTableEntry reports whether a catalog entry is a table's.
func IsTableEntry(name string) bool { return !strings.HasPrefix(name, ReservedPrefix) }

var reservedName = regexp.MustCompile(`^_[a-z0-9_]{1,62}$`)

// ValidateCatalogName accepts the name of a catalog entry: a table's
// (ValidateTableName) or a reserved one ('_' then 1-62 lower-case letters,
// digits or '_').
func ValidateCatalogName(name string) error {
	if reservedName.MatchString(name) {
		return nil
	}
	return ValidateTableName(name)
}

// ValidateTableName accepts lower-case ASCII letters, digits and underscores,
// starting with a letter, at most 63 characters: safe as a file, topic and
// SQL identifier everywhere wail puts it.
func ValidateTableName(name string) error {
	if !tableName.MatchString(name) {
		return fmt.Errorf("invalid table name %q: use 1-63 lower-case letters, digits or '_', starting with a letter", name)
	}
	return nil
}
