// Package catalog keeps wail's table definitions: name, failure mode,
// visibility window, partition count and the resolver's retry bounds. Definitions are persisted through
// the store (so every proxy sharing a store sees the same tables) and cached
// in memory; the proxy reads the cache on every request, the resolver is told
// when a table appears.
package catalog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/store"
	"google.golang.org/protobuf/proto"
)

// Sentinel errors.
var (
	// ErrNotFound: no table of that name.
	ErrNotFound = errors.New("table not found")
	// ErrConflict: a table of that name exists with another definition.
	ErrConflict = errors.New("table exists with a different definition")
	// ErrInvalid: the definition is not acceptable.
	ErrInvalid = errors.New("invalid table definition")
)

// FailureMode says what the proxy does when an intent cannot be logged.
type FailureMode uint8

// Failure modes. The values match wail.v1.FailureMode.
const (
	// Transactional rejects the mutation and leaves the store untouched.
	Transactional FailureMode = 1
	// Independent writes the store anyway and reports intent_logged=false.
	Independent FailureMode = 2
)

// ParseFailureMode parses "transactional" or "independent" ("" is
// transactional).
func ParseFailureMode(s string) (FailureMode, error) {
	switch s {
	case "", "transactional":
		return Transactional, nil
	case "independent":
		return Independent, nil
	}
	return 0, fmt.Errorf("%w: failure mode %q: use transactional or independent", ErrInvalid, s)
}

func (m FailureMode) String() string {
	if m == Independent {
		return "independent"
	}
	return "transactional"
}

// Table is a table definition.
type Table struct {
	Name             string
	FailureMode      FailureMode
	VisibilityWindow time.Duration
	Partitions       int32
	CreatedAt        time.Time
	// MaxAttempts and MaxRetryTime bound the counted failed store reads or
	// event publishes of a key before the resolver dead-letters its
	// intents (whichever comes first; see DESIGN.md, the resolve path).
	MaxAttempts  int32
	MaxRetryTime time.Duration
}

// Retry bounds of tables that were defined without them.
const (
	DefaultMaxAttempts  = 10
	DefaultMaxRetryTime = time.Minute
)

// Proto returns the API form of the definition.
func (t Table) Proto() *wailv1.Table {
	return &wailv1.Table{
		Name:               t.Name,
		FailureMode:        wailv1.FailureMode(t.FailureMode),
		VisibilityWindowMs: t.VisibilityWindow.Milliseconds(),
		Partitions:         t.Partitions,
		CreatedAtUs:        t.CreatedAt.UnixMicro(),
		MaxAttempts:        t.MaxAttempts,
		MaxRetryTimeMs:     t.MaxRetryTime.Milliseconds(),
	}
}

// FromProto converts the API form. A definition stored before tables had
// retry bounds gets the defaults.
func FromProto(p *wailv1.Table) Table {
	t := Table{
		Name:             p.Name,
		FailureMode:      FailureMode(p.FailureMode),
		VisibilityWindow: time.Duration(p.VisibilityWindowMs) * time.Millisecond,
		Partitions:       p.Partitions,
		CreatedAt:        time.UnixMicro(p.CreatedAtUs),
		MaxAttempts:      p.MaxAttempts,
		MaxRetryTime:     time.Duration(p.MaxRetryTimeMs) * time.Millisecond,
	}
	if t.MaxAttempts == 0 {
		t.MaxAttempts = DefaultMaxAttempts
	}
	if t.MaxRetryTime == 0 {
		t.MaxRetryTime = DefaultMaxRetryTime
	}
	return t
}

func (t Table) sameAs(o Table) bool {
	return t.Name == o.Name && t.FailureMode == o.FailureMode &&
		t.VisibilityWindow == o.VisibilityWindow && t.Partitions == o.Partitions &&
		t.MaxAttempts == o.MaxAttempts && t.MaxRetryTime == o.MaxRetryTime
}

// Backend persists definitions; store.Store implements it.
type Backend interface {
	SaveTable(ctx context.Context, t store.Table) error
	Tables(ctx context.Context) ([]store.Table, error)
	CreateTable(ctx context.Context, table string) error
}

// Provisioner makes the room a new table needs outside the store (the
// intent log and event bus topics). It must be idempotent.
type Provisioner func(ctx context.Context, t Table) error

// Catalog is the cached set of tables.
type Catalog struct {
	backend   Backend
	provision Provisioner
	defaults  Table

	mu       sync.RWMutex
	tables   map[string]Table
	watchers []chan<- Table
}

// Open loads the catalog from the backend. defaults fills in what a
// create request leaves zero.
func Open(ctx context.Context, b Backend, provision Provisioner, defaults Table) (*Catalog, error) {
	c := &Catalog{backend: b, provision: provision, defaults: defaults, tables: map[string]Table{}}
	rows, err := b.Tables(ctx)
	if err != nil {
		return nil, fmt.Errorf("catalog: load: %w", err)
	}
	for _, r := range rows {
		var p wailv1.Table
		if err := proto.Unmarshal(r.Spec, &p); err != nil {
			return nil, fmt.Errorf("catalog: load %s: %w", r.Name, err)
		}
		c.tables[r.Name] = FromProto(&p)
	}
	return c, nil
}

// Refresh reloads the definitions from the backend and adds the tables
// other processes sharing it created (provisioned here, announced to the
// watchers). Tables are never redefined or dropped by a refresh.
func (c *Catalog) Refresh(ctx context.Context) error {
	rows, err := c.backend.Tables(ctx)
	if err != nil {
		return fmt.Errorf("catalog: refresh: %w", err)
	}
	for _, r := range rows {
		if _, ok := c.Get(r.Name); ok {
			continue
		}
		var p wailv1.Table
		if err := proto.Unmarshal(r.Spec, &p); err != nil {
			return fmt.Errorf("catalog: refresh %s: %w", r.Name, err)
		}
		t := FromProto(&p)
		if err := c.provision(ctx, t); err != nil {
			return fmt.Errorf("catalog: refresh %s: %w", t.Name, err)
		}
		c.add(t)
	}
	return nil
}

// add caches a table and tells the watchers, unless it is known already.
func (c *Catalog) add(t Table) (Table, bool) {
	c.mu.Lock()
	if old, ok := c.tables[t.Name]; ok {
		c.mu.Unlock()
		return old, false
	}
	c.tables[t.Name] = t
	watchers := append([]chan<- Table(nil), c.watchers...)
	c.mu.Unlock()
	for _, w := range watchers {
		w <- t
	}
	return t, true
}

// Get returns a table by name.
func (c *Catalog) Get(name string) (Table, bool) {
	c.mu.RLock()
	t, ok := c.tables[name]
	c.mu.RUnlock()
	return t, ok
}

// List returns all tables sorted by name.
func (c *Catalog) List() []Table {
	c.mu.RLock()
	out := make([]Table, 0, len(c.tables))
	for _, t := range c.tables {
		out = append(out, t)
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Watch returns every existing table and then each table created later on
// ch (which must be buffered or drained promptly).
func (c *Catalog) Watch(ch chan<- Table) []Table {
	c.mu.Lock()
	c.watchers = append(c.watchers, ch)
	c.mu.Unlock()
	return c.List()
}

// Create defines a table (zero fields take the defaults), provisions its
// topics and store room, and persists it. Creating an identical table again
// is not an error: created is then false.
func (c *Catalog) Create(ctx context.Context, t Table) (_ Table, created bool, err error) {
	t = c.withDefaults(t)
	if err := validate(t); err != nil {
		return Table{}, false, err
	}
	if old, ok := c.Get(t.Name); ok {
		if !old.sameAs(t) {
			return old, false, fmt.Errorf("%w: %s is %s, window %s, %d partitions, max attempts %d, max retry time %s", ErrConflict,
				old.Name, old.FailureMode, old.VisibilityWindow, old.Partitions, old.MaxAttempts, old.MaxRetryTime)
		}
		return old, false, nil
	}
	t.CreatedAt = time.Now().Truncate(time.Microsecond)
	if err := c.provision(ctx, t); err != nil {
		return Table{}, false, fmt.Errorf("catalog: create %s: %w", t.Name, err)
	}
	if err := c.backend.CreateTable(ctx, t.Name); err != nil {
		return Table{}, false, fmt.Errorf("catalog: create %s: %w", t.Name, err)
	}
	spec, err := proto.Marshal(t.Proto())
	if err != nil {
		return Table{}, false, fmt.Errorf("catalog: create %s: %w", t.Name, err)
	}
	if err := c.backend.SaveTable(ctx, store.Table{Name: t.Name, Spec: spec}); err != nil {
		return Table{}, false, fmt.Errorf("catalog: create %s: %w", t.Name, err)
	}
	t, created = c.add(t) // false: lost a race with a concurrent create
	return t, created, nil
}

func (c *Catalog) withDefaults(t Table) Table {
	if t.FailureMode == 0 {
		t.FailureMode = c.defaults.FailureMode
	}
	if t.VisibilityWindow == 0 {
		t.VisibilityWindow = c.defaults.VisibilityWindow
	}
	if t.Partitions == 0 {
		t.Partitions = c.defaults.Partitions
	}
	if t.MaxAttempts == 0 {
		t.MaxAttempts = cmp.Or(c.defaults.MaxAttempts, DefaultMaxAttempts)
	}
	if t.MaxRetryTime == 0 {
		t.MaxRetryTime = cmp.Or(c.defaults.MaxRetryTime, DefaultMaxRetryTime)
	}
	return t
}

func validate(t Table) error {
	if err := store.ValidateTableName(t.Name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	switch {
	case t.FailureMode != Transactional && t.FailureMode != Independent:
		return fmt.Errorf("%w: failure mode %d: use transactional or independent", ErrInvalid, t.FailureMode)
	case t.VisibilityWindow < 10*time.Millisecond || t.VisibilityWindow > 24*time.Hour:
		return fmt.Errorf("%w: visibility window %s out of range 10ms..24h", ErrInvalid, t.VisibilityWindow)
	case t.Partitions < 1 || t.Partitions > 1024:
		return fmt.Errorf("%w: %d partitions out of range 1..1024", ErrInvalid, t.Partitions)
	case t.MaxAttempts < 1 || t.MaxAttempts > 1_000_000:
		return fmt.Errorf("%w: max attempts %d out of range 1..1000000", ErrInvalid, t.MaxAttempts)
	case t.MaxRetryTime < time.Second || t.MaxRetryTime > 7*24*time.Hour:
		return fmt.Errorf("%w: max retry time %s out of range 1s..168h", ErrInvalid, t.MaxRetryTime)
	}
	return nil
}
