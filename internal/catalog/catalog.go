// Package catalog keeps wail's table definitions: name, failure mode,
// visibility window, partition count, retry bounds and, for a typed table,
// its key and value messages, and where each table is in its life
// (creating, ready, dropping, deleting).
//
// Definitions live in the store's catalog (so every process sharing a store
// sees the same tables) and are cached here; the proxy reads the cache on
// every request, the resolver is told when a table appears and looks up
// whether it is still there as it goes.
//
// Every change of a definition is one compare-and-set in the store
// (store.CatalogSwapper), so processes sharing a store agree on one
// definition per table and a process always serves exactly what is saved:
//
//   - Create reserves the name (creating, if absent), makes the table's
//     topics and store room, then marks it ready. Only ready tables take
//     writes. A create of the same definition finishes a reservation that
//     a crashed process left; a failed create removes what it made and
//     the reservation.
//   - Alter changes what can change on a live table (failure mode,
//     visibility window, retry bounds, whether a typed table's writes are
//     validated); every process picks it up at its next Refresh. A changed
//     window keeps the other one in force for a while, for writes already
//     admitted or resolvers not yet told (window.go).
//   - Drop stops writes (dropping), waits until no write can still be in
//     flight anywhere and every intent is resolved (unless forced), then
//     stops resolving (deleting), removes topics, rows and offsets, and
//     finally the entry. A drop that stops half way is finished by running
//     it again.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// Sentinel errors.
var (
	// ErrNotFound: no table of that name.
	ErrNotFound = errors.New("table not found")
	// ErrConflict: a table of that name exists with another definition.
	ErrConflict = errors.New("table exists with a different definition")
	// ErrInvalid: the definition is not acceptable.
	ErrInvalid = errors.New("invalid table definition")
	// ErrBusy: the table is not in a state that allows the change (being
	// created or dropped, writes in flight, unresolved intents); the
	// message says how to proceed.
	ErrBusy = errors.New("table busy")
	// ErrBudget: the change would pass a partition budget.
	ErrBudget = errors.New("partition budget exhausted")
	// ErrLoad: Refresh could not read the catalog from the store (the
	// store failed), as opposed to tables it read but cannot serve.
	ErrLoad = errors.New("catalog: load")
	// ErrStale: this process's copy of the catalog is too old to take
	// writes with (Fresh).
	ErrStale = errors.New("the table catalog is stale here")
)

// Backend persists definitions and makes and removes a table's room in the
// store; store.Store implements it.
type Backend interface {
	Tables(ctx context.Context) ([]store.Table, error)
	store.CatalogSwapper
	CreateTable(ctx context.Context, table string) error
	store.TableDropper
}

// Provisioner makes and removes what a table needs outside the store: its
// topics on the intent log and event bus (and their committed offsets).
// Both must be idempotent.
type Provisioner interface {
	Provision(ctx context.Context, t Table) error
	Unprovision(ctx context.Context, t Table) error
}

// TopicIDReader is a Provisioner on a log shared by processes whose topics
// have ids (Kafka; intentlog.TopicIDDeleter). A drop saves the ids of the
// table's topics in its entry once it is marked deleting (Table.TopicIDs)
// and Unprovision deletes the topics by those: a topic made again under
// its name since (the table dropped elsewhere and created again) has
// another id and is left. A Provisioner without ids deletes by name.
type TopicIDReader interface {
	// TopicIDs returns the ids of t's topics that exist; nil: the log has
	// no ids.
	TopicIDs(ctx context.Context, t Table) (TopicIDs, error)
}

// OwnedReader is a Provisioner whose log records what each table's topics
// were made for (the embedded log, one process's: intentlog.OwnerLister).
// Open notes them as made here (Catalog.made), so that what this process
// made before a restart is released as what it made since is: the topics
// of a table dropped elsewhere while it was down are deleted (they stayed
// for good), and a table created again under the name does not take them
// over, the dropped table's records and offsets with them.
type OwnedReader interface {
	// Owned returns the tables (name and CreatedAt) whose topics the log
	// holds.
	Owned(ctx context.Context) ([]Table, error)
}

// Options configures a Catalog.
type Options struct {
	// Defaults fills in what a create leaves zero (Name and State unused).
	Defaults Table
	Limits   Limits
	// Provisioner makes and removes topics; required.
	Provisioner Provisioner
	// Refresh is how often every process sharing the store reloads the
	// catalog (config catalog_refresh): a drop waits this long for every
	// process to see a state change.
	Refresh time.Duration
	// TakeUp is how long a resolver takes, after its catalog refresh, to
	// apply an alter (config resolver.commit_interval). A window an alter
	// lengthened is used for writes only SeenWithin(Refresh) plus TakeUp
	// after this process saw it (WriteWindow).
	TakeUp time.Duration
	// OnProblem, when set, is told when a ready table cannot be served
	// here (its topics cannot be made) and when that clears (err nil).
	OnProblem func(table string, err error)
	// Release, when set, is called by a refresh for a table this process
	// served that another process dropped (or dropped and created anew),
	// after it stopped being resolved here: a log of this process alone
	// (embedded) removes its topics, which the dropping process cannot.
	Release func(ctx context.Context, t Table) error
	// OnRelease, when set, is told how each Release ended (err nil: it
	// was released); one that failed is tried again.
	OnRelease func(t Table, err error)
	// Opening, when set, is given the catalog before Open loads it: the
	// releases of that load (Release) use it (ReleaseTopics).
	Opening func(c *Catalog)
}

// entry is a table as saved, with the exact bytes the store holds (swaps
// compare them).
type entry struct {
	t    Table
	spec []byte
	// served: this process made sure of its topics; only then is a ready
	// table written and resolved here.
	served bool
	// bad: the entry cannot be read (damaged); the table is not served,
	// and t is only its name, or the definition this process served
	// before (whose topics it made: served).
	bad error
	// narrow, until narrowUntil, is the shorter window writes are still
	// made under after this process saw an alter lengthen t's (see
	// WriteWindow).
	narrow      time.Duration
	narrowUntil time.Time
}

// decodeEntry reads a row of the catalog. An entry that cannot be decoded,
// or that names another table, is bad: a damaged entry must not stop the
// process (or fail every change of every table), and only a forced drop
// can tell what to remove.
func decodeEntry(r store.Table) entry {
	t, err := decode(r.Spec)
	if err == nil && t.Name != r.Name {
		err = fmt.Errorf("it names table %q", t.Name)
	}
	if err != nil {
		return entry{t: Table{Name: r.Name}, spec: r.Spec, bad: fmt.Errorf("%w: the catalog entry of table %s "+
			"cannot be read (%w): the table is not served; remove it, with its rows and topics, with "+
			"`wail table drop %s --force`, or restore the entry", ErrBusy, r.Name, err, r.Name)}
	}
	return entry{t: t, spec: r.Spec}
}

// Catalog is the cached set of tables.
type Catalog struct {
	backend Backend
	opts    Options

	// opMu orders this process's swaps and what they install in the cache.
	opMu sync.Mutex
	seq  uint64 // local installs, under opMu: a refresh that saw an older store skips its round
	// topicLocks orders this process's making of a table's topics after a
	// read of its entry (provision, shared) and their deletion by a drop
	// (remove, exclusive), per table name.
	topicLocks topicLocks

	// makingMu guards making: the tables whose topics a refresh began to
	// make and did not wait for to the end (provisionBy); and creating:
	// the makings of creates here (provisionLocked).
	makingMu sync.Mutex
	making   map[string]*making
	creating map[*createMaking]struct{}
	// made: the table whose topics this process made last, per name,
	// until they are deleted here (ReleaseTopics, releaseEarlier).
	// releasing: the releases of each name running (releasesBegin);
	// released is closed when one ends.
	made      map[string]Table
	releasing map[string]int
	released  chan struct{}

	mu       sync.RWMutex
	tables   map[string]entry
	watchers []chan<- Table
	loadedAt time.Time // when the reload whose tables are cached began to read them
}

// Open loads the catalog from the backend and makes sure of the topics of
// every ready table, first noting what the log's topics were made for
// (OwnedReader) and releasing those of tables the store no longer holds. It fails only when the catalog cannot be read: a table
// whose topics cannot be made is not served (Options.OnProblem is told;
// Refresh tries again).
func Open(ctx context.Context, b Backend, opts Options) (*Catalog, error) {
	if opts.Provisioner == nil {
		return nil, errors.New("catalog: no provisioner")
	}
	opts.Limits = opts.Limits.withDefaults()
	opts.Defaults = WithDefaults(opts.Defaults, Table{MaxAttempts: DefaultMaxAttempts, MaxRetryTime: DefaultMaxRetryTime})
	c := &Catalog{backend: b, opts: opts, tables: map[string]entry{}, making: map[string]*making{}}
	if r, ok := opts.Provisioner.(OwnedReader); ok {
		owned, err := r.Owned(ctx)
		if err != nil {
			return nil, fmt.Errorf("catalog: reading which tables the log's topics were made for: %w", err)
		}
		if len(owned) > 0 {
			rows, err := c.tableEntries(ctx)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrLoad, err)
			}
			if len(rows) == 0 {
				return nil, noTableHeld(owned)
			}
		}
		for _, t := range owned {
			c.madeFor(t)
		}
	}
	if opts.Opening != nil {
		opts.Opening(c)
	}
	if _, err := c.reload(ctx, 0); err != nil {
		return nil, err
	}
	return c, nil
}

// ErrNoTableHeld: the store holds no table, but this process's log holds
// topics made for tables (OwnedReader). Open refuses to start: the store
// may not be the one they were made with (a wrong DSN, an empty
// database), and releasing them would delete them (events consumers had
// not read, intents not resolved).
var ErrNoTableHeld = errors.New("the store holds no table, but this process's log holds topics made for tables")

func noTableHeld(owned []Table) error {
	names := make([]string, 0, len(owned))
	for _, t := range owned {
		names = append(names, fmt.Sprintf("%s (created %s)", t.Name, t.CreatedAt.UTC().Format(time.RFC3339Nano)))
	}
	slices.Sort(names)
	return fmt.Errorf("catalog: %w: %s. Check that the store is the one they were made with (store.kind or --store, "+
		"store.dsn or --dsn, the data dir's store); if it is (every table was dropped while this process was down), "+
		"remove those tables' topic directories from the embedded log's directory (<data_dir>/log/wail.intents.<table>, "+
		"wail.events.<table>, wail.dlq.<table>) while wail is stopped, then start it",
		ErrNoTableHeld, strings.Join(names, ", "))
}

// Refresh reloads the definitions from the backend: it takes up tables that
// other processes created (making sure of their topics here first, then
// announcing them to the watchers), alters, drops, and tables whose topics
// could not be made before. It returns the first error of reading the
// catalog (ErrLoad), or the problems of tables it cannot serve (each also
// told to Options.OnProblem). The making of a table's topics that has not
// finished a quarter of SeenWithin after the refresh began goes on
// without it: the table is not served here until a later refresh finds
// it finished, and the others are taken up meanwhile (a refresh held up
// by one table left the copy stale, and every table refused writes).
func (c *Catalog) Refresh(ctx context.Context) error {
	var wait time.Duration
	if c.opts.Refresh > 0 {
		wait = SeenWithin(c.opts.Refresh) / 4
	}
	problems, err := c.reload(ctx, wait)
	if err != nil {
		return err
	}
	return problems
}

// reload is Refresh; problems are the tables it cannot serve, err a failure
// to read the catalog. It waits for the making of topics until wait after
// it began (0: to the end).
func (c *Catalog) reload(ctx context.Context, wait time.Duration) (problems, err error) {
	seq := c.opSeq()
	began := time.Now()
	var deadline time.Time
	if wait > 0 {
		deadline = began.Add(wait)
	}
	rows, err := c.tableEntries(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLoad, err)
	}
	loaded := make(map[string]entry, len(rows))
	var (
		errs     []error
		release  []Table              // served here, and dropped or created anew elsewhere
		reported = map[string]error{} // the outcomes of provision, told once this round is cached
	)
	entries := make([]entry, len(rows))
	for i, r := range rows {
		entries[i] = decodeEntry(r)
	}
	c.forgetMakings(entries, began)
	for _, e := range entries {
		t := e.t
		old, had := c.lookup(t.Name)
		if e.bad != nil {
			// Not served, but not released either: the topics this
			// process made stay until the entry is restored or dropped.
			if had && old.served {
				e.t, e.served = old.t, true
			}
			reported[t.Name] = e.bad
			errs = append(errs, e.bad)
			loaded[t.Name] = e
			continue
		}
		if had {
			e = e.followWindow(old, time.Now(), c.windowHold())
		} else {
			e = e.firstSeen(time.Now(), c.windowHold())
		}
		same := had && old.served && old.t.CreatedAt.Equal(t.CreatedAt)
		switch {
		case had && old.served && (!same || t.State == Deleting):
			// Release the old one first; a table created anew is
			// provisioned at the next refresh.
			release = append(release, old.t)
		case same:
			e.served = true
		case t.State == Ready || t.State == Dropping:
			e.served, err = c.provisionBy(ctx, t, seq, deadline)
			reported[t.Name] = err
			if err != nil {
				errs = append(errs, err)
			}
		}
		loaded[t.Name] = e
	}
	c.mu.RLock()
	var missing []entry // served here, absent from the read
	for name, old := range c.tables {
		if _, ok := loaded[name]; !ok && old.served {
			missing = append(missing, old)
		}
	}
	c.mu.RUnlock()
	for _, old := range missing {
		gone, err := c.absent(ctx, old.t)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("catalog: table %s is missing from the catalog read: %w", old.t.Name, err))
			loaded[old.t.Name] = old
		case gone:
			release = append(release, old.t)
		default:
			loaded[old.t.Name] = old // the read missed it: the next refresh reads it again
		}
	}
	c.opMu.Lock()
	if c.seq != seq {
		c.opMu.Unlock()
		return errors.Join(errs...), nil // a local change raced this reload: the next one takes it up
	}
	c.mu.Lock()
	for name := range c.tables {
		if _, ok := loaded[name]; !ok {
			reported[name] = nil // gone: nothing left to serve
		}
	}
	var announce []Table
	for name, e := range loaded {
		old, ok := c.tables[name]
		if resolvable(e) && (!ok || !resolvable(old) || !old.t.CreatedAt.Equal(e.t.CreatedAt)) {
			announce = append(announce, e.t)
		}
	}
	c.tables, c.loadedAt = loaded, began
	c.mu.Unlock()
	for name, err := range reported {
		c.report(name, err)
	}
	// Registered with the outcome: a create here that reads the store
	// from now on finds the table gone, and its making waits for the
	// release of the dropped one.
	defer c.releasesBegin(release)()
	c.opMu.Unlock()
	c.announce(announce)
	errs = append(errs, c.runReleases(ctx, release)...)
	errs = append(errs, c.releaseUnheld(ctx, loaded, release)...)
	return errors.Join(errs...), nil
}

// absent reads again whether the store no longer holds t before a
// release of it that only its absence from a read decided (reload: a
// table served here; releaseGone: one whose topics were made here): the
// release deletes its topics, and one read answered empty (a store that
// misread) deleted every served table's, records and all, made again
// empty at the next refresh. Still listed under t's created_at, or
// unreadable (bad), t is held; a failed read says nothing.
func (c *Catalog) absent(ctx context.Context, t Table) (bool, error) {
	now, found, err := c.load(ctx, t.Name)
	switch {
	case err != nil:
		return false, fmt.Errorf("reading the entry of the name: %w", err)
	case found && (now.bad != nil || now.t.CreatedAt.Equal(t.CreatedAt)):
		return false, nil
	}
	return true, nil
}

// opSeq returns the count of this process's installs (seq).
func (c *Catalog) opSeq() uint64 {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	return c.seq
}

// report tells OnProblem whether a table can be served here.
func (c *Catalog) report(table string, err error) {
	if c.opts.OnProblem != nil {
		c.opts.OnProblem(table, err)
	}
}

// resolvable: the resolver works on the table (ready or dropping, and its
// topics are in place here).
func resolvable(e entry) bool {
	return e.bad == nil && e.served && (e.t.State == Ready || e.t.State == Dropping)
}

// install caches what this process just saved (call with opMu held) and
// announces a table that became resolvable.
func (c *Catalog) install(e entry, deleted bool) {
	c.seq++
	c.mu.Lock()
	old, had := c.tables[e.t.Name]
	switch {
	case deleted:
	case had:
		e = e.followWindow(old, time.Now(), c.windowHold())
	default:
		e = e.firstSeen(time.Now(), c.windowHold())
	}
	if deleted {
		delete(c.tables, e.t.Name)
	} else {
		c.tables[e.t.Name] = e
	}
	c.mu.Unlock()
	if deleted {
		c.report(e.t.Name, nil) // gone: nothing left to serve
	}
	if !deleted && resolvable(e) && (!had || !resolvable(old) || !old.t.CreatedAt.Equal(e.t.CreatedAt)) {
		c.announce([]Table{e.t})
	}
}

func (c *Catalog) announce(ts []Table) {
	if len(ts) == 0 {
		return
	}
	c.mu.RLock()
	watchers := append([]chan<- Table(nil), c.watchers...)
	c.mu.RUnlock()
	for _, t := range ts {
		for _, w := range watchers {
			w <- t
		}
	}
}

func (c *Catalog) lookup(name string) (entry, bool) {
	c.mu.RLock()
	e, ok := c.tables[name]
	c.mu.RUnlock()
	return e, ok
}

// Fresh returns nil while this process's copy of the catalog may take
// writes: the reload it comes from began to read the store less than
// SeenWithin(Refresh) ago. Another process's drop, or alter of a window,
// counts on every process seeing it by then (Table.DrainWait,
// WideUntil): an older copy may not show it, and a write taken with it
// may land after the drop removed the table's topics and rows. Else it
// returns an ErrStale that says since when. Always nil without Refresh.
func (c *Catalog) Fresh() error {
	if c.opts.Refresh <= 0 {
		return nil
	}
	c.mu.RLock()
	age := time.Since(c.loadedAt)
	c.mu.RUnlock()
	if limit := SeenWithin(c.opts.Refresh); age >= limit {
		return fmt.Errorf("%w: it was last read from the store %s ago, over %s (twice catalog_refresh plus a second): writes are refused until it is read again, "+
			"since a drop or an alter made elsewhere meanwhile may not be seen here", ErrStale, age.Round(time.Millisecond), limit)
	}
	return nil
}

// Load returns the definition of name as the store holds it now, in any
// state (found false: there is none). Get, Resolving and List answer from
// this process's copy, which another process's create, alter or drop
// leaves stale for up to a Refresh: what must not be decided wrongly from
// a stale copy is decided from Load.
func (c *Catalog) Load(ctx context.Context, name string) (_ Table, found bool, err error) {
	e, found, err := c.load(ctx, name)
	if err == nil {
		err = e.bad
	}
	if err != nil {
		return Table{}, false, fmt.Errorf("catalog: reading %s: %w", name, err)
	}
	return e.t, found, nil
}

// Get returns a table that takes writes: ready, with its topics in place.
func (c *Catalog) Get(name string) (Table, bool) {
	e, ok := c.lookup(name)
	if !ok || e.bad != nil || !e.served || e.t.State != Ready {
		return Table{}, false
	}
	return e.t, true
}

// Resolving returns a table the resolver must work on: ready or dropping
// (a drop waits for its intents to resolve). A table that is being
// deleted, gone, or created again since (another CreatedAt) is not: its
// partitions stop.
func (c *Catalog) Resolving(name string) (Table, bool) {
	e, ok := c.lookup(name)
	if !ok || !resolvable(e) {
		return Table{}, false
	}
	return e.t, true
}

// List returns every table in any state, sorted by name.
func (c *Catalog) List() []Table {
	c.mu.RLock()
	out := make([]Table, 0, len(c.tables))
	for _, e := range c.tables {
		t := e.t
		if e.bad != nil {
			t = Table{Name: t.Name} // in no known state
		}
		out = append(out, t)
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Watch returns the tables to resolve now and then sends on ch each table
// that becomes one to resolve: created (here or, after a Refresh,
// elsewhere), or created again after a drop. ch must be buffered or
// drained promptly. A table that must no longer be resolved is not sent:
// see Resolving.
func (c *Catalog) Watch(ch chan<- Table) []Table {
	c.mu.Lock()
	c.watchers = append(c.watchers, ch)
	var out []Table
	for _, e := range c.tables {
		if resolvable(e) {
			out = append(out, e.t)
		}
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
