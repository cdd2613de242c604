// Package reconcile makes the event bus catch up with the store. For each
// key whose stored version is newer than its last event on the bus, and
// that nothing else will publish, it logs an intent to the table's intent
// log: the stored version, the op of the stored state (UPSERT or DELETE),
// and published_floor = the key's last version on the bus. The resolver,
// the only publisher of the bus, then reads the key and publishes its
// current state. It never writes the bus or the store.
//
// Run runs it over every key of a table (`wail table reconcile`: after a
// retention gap, an operator mistake, a bug); Keys over the keys of dead
// letters (redrive).
//
// Per partition, step by step (see DESIGN.md for why it is safe while
// writes continue):
//
//  1. Fence: note the intent partition's end E, then wait until the
//     resolvers' committed offset reaches E (every intent logged before is
//     resolved: published, or dead-lettered, or found unmaterialized), up
//     to Options.CatchUp; a wait over an eighth of Options.Horizon is taken
//     again from a new end.
//  2. Scan the event partition (all of it the first time, only what is new
//     after a later fence) for the last version of each key wanted.
//  3. Read each key at the store's strongest level.
//  4. Read the intents logged since E: a key whose stored version's own
//     intent is among them is in flight, not behind.
//  5. Decide (Decide) and append the intents of the keys behind, durably.
//     A batch is appended only within Options.Horizon/4 of its fence;
//     later, the partition is fenced again and the scan brought up to date
//     first.
//
// Memory: the keys of one chunk (Options.ChunkBytes of key bytes) and their
// last versions; a larger table takes one pass over the bus per chunk.
package reconcile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
)

// Defaults of the zero fields of Options.
const (
	DefaultCatchUp    = 30 * time.Second
	DefaultHorizon    = 2 * time.Minute
	DefaultChunkBytes = 64 << 20
	// MaxReported bounds Report.Keys.
	MaxReported = 1000
	// pageKeys is the page size of a store scan and the batch of keys
	// read, decided and appended together.
	pageKeys = 512
	// readers bounds the store reads in flight.
	readers = 8
)

// Sentinel errors.
var (
	// ErrNotCaughtUp: the resolvers did not resolve the intents logged
	// before the fence within Options.CatchUp (none running, or stuck).
	ErrNotCaughtUp = errors.New("the resolver has not caught up")
	// ErrNoScan: the store cannot list keys (no store.Scanner).
	ErrNoScan = errors.New("the store cannot list its keys")
	// ErrUnreadable: the store failed to read some keys of a Run (not
	// unavailable: those keys' own trouble); the others were reconciled.
	ErrUnreadable = errors.New("the store could not read some keys")
	// ErrSlowLog: the intent log did not take a batch of intents within a
	// quarter of the dedupe horizon.
	ErrSlowLog = errors.New("the intent log is too slow")
	// ErrRecreated: the table's topics are not those the run began on
	// (another partition count, or a partition that ends below where the
	// run saw it end): the table was dropped and created again meanwhile,
	// or the log lost records. Nothing more was logged.
	ErrRecreated = errors.New("the table was dropped and created again while the reconcile ran")
)

// Options are the backends and settings of a run.
type Options struct {
	Log   intentlog.Log
	Bus   *eventbus.Bus
	Store store.Store
	// Group is the resolvers' group, whose committed offsets tell what
	// they resolved.
	Group string
	// ProxyID goes into the intents logged.
	ProxyID uint32
	// Horizon is the resolvers' dedupe horizon (DefaultHorizon when 0).
	Horizon time.Duration
	// CatchUp bounds the wait for the resolvers at a fence (DefaultCatchUp).
	CatchUp time.Duration
	// Compacted says the bus compacts its topics (Kafka).
	Compacted bool
	// EventRetention is the bus's retention (0: none), for a partition
	// that retention emptied.
	EventRetention time.Duration
	// ChunkBytes bounds the key bytes held at once (DefaultChunkBytes).
	ChunkBytes int
	// DryRun decides but logs nothing.
	DryRun bool
	// IDPrefix starts the intent ids ("reconcile" when empty).
	IDPrefix string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (o *Options) normalize() {
	if o.Horizon <= 0 {
		o.Horizon = DefaultHorizon
	}
	if o.CatchUp <= 0 {
		o.CatchUp = DefaultCatchUp
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = DefaultChunkBytes
	}
	if o.IDPrefix == "" {
		o.IDPrefix = "reconcile"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Table names the table to run on.
type Table struct {
	Name       string
	Partitions int32
}

// Key is the outcome for one key.
type Key struct {
	Partition int32
	Key       []byte
	// Stored is the stored version (0: the store does not have the key);
	// Deleted says it is a tombstone.
	Stored  uint64
	Deleted bool
	// LastEvent is the key's highest version on the bus (0: none).
	LastEvent uint64
	Verdict   Verdict
	// Logged is the version of the intent logged (0: none, e.g. a dry run).
	Logged uint64
	// Err is why the store could not read the key (Verdict Unreadable).
	Err error
}

// Report is what a run did.
type Report struct {
	Scanned int64
	// Behind counts the keys whose stored version was newer than their
	// last event with nothing else to publish it: an intent was logged
	// for each (unless DryRun).
	Behind int64
	// InFlight and Expired count the keys of those verdicts.
	InFlight, Expired int64
	// Keys are the first MaxReported keys behind.
	Keys []Key
	// ExpiredKeys are the first MaxReported keys expired, and ExpiredIn
	// the partitions of all of them: a GAP letter of such a partition
	// cannot be settled (one of its lost intents may be an expired key's,
	// which nothing publishes).
	ExpiredKeys []Key
	ExpiredIn   map[int32]bool
	// Unreadable counts the keys the store failed to read (Run goes on
	// with the others, and fails with ErrUnreadable at the end): nothing
	// was decided or logged for them. UnreadableKeys are the first
	// MaxReported of them (Key.Err says why); UnreadableIn holds the
	// partitions of all of them.
	Unreadable     int64
	UnreadableKeys []Key
	UnreadableIn   map[int32]bool
}

func (r *Report) add(k Key) {
	r.Scanned++
	switch k.Verdict {
	case Behind:
		r.Behind++
		if len(r.Keys) < MaxReported {
			r.Keys = append(r.Keys, k)
		}
	case InFlight:
		r.InFlight++
	case Expired:
		r.Expired++
		if len(r.ExpiredKeys) < MaxReported {
			r.ExpiredKeys = append(r.ExpiredKeys, k)
		}
		if r.ExpiredIn == nil {
			r.ExpiredIn = map[int32]bool{}
		}
		r.ExpiredIn[k.Partition] = true
	case Unreadable:
		r.Unreadable++
		if len(r.UnreadableKeys) < MaxReported {
			r.UnreadableKeys = append(r.UnreadableKeys, k)
		}
		if r.UnreadableIn == nil {
			r.UnreadableIn = map[int32]bool{}
		}
		r.UnreadableIn[k.Partition] = true
	}
}

// unreadableError is the error of a run that could not read some keys.
func (r *Report) unreadableError(table string) error {
	const shown = 10
	var names []string
	for _, k := range r.UnreadableKeys[:min(len(r.UnreadableKeys), shown)] {
		names = append(names, fmt.Sprintf("%q (partition %d)", k.Key, k.Partition))
	}
	if more := r.Unreadable - int64(len(names)); more > 0 {
		names = append(names, fmt.Sprintf("and %d more", more))
	}
	return fmt.Errorf("%w: reconcile %s: the store failed to read %d keys: %s (the first: %v); nothing was logged for them. "+
		"The other %d keys were reconciled (%d behind: intents logged unless a dry run; %d in flight; %d expired). "+
		"Retry `wail table reconcile %s` once the store reads them (the keys up to date by then cost a read each); the table's GAP letters of their partitions stay unsettled until then",
		ErrUnreadable, table, r.Unreadable, strings.Join(names, ", "), r.UnreadableKeys[0].Err,
		r.Scanned-r.Unreadable, r.Behind, r.InFlight, r.Expired, table)
}

// run is one reconcile run: its options and intent ids.
type run struct {
	o     Options
	t     Table
	idTag string
	seq   atomic.Uint64
	// perKey: a key the store fails to read (other than unavailable) is
	// reported Unreadable, and the others go on.
	perKey bool
}

func newRun(o Options, t Table) *run {
	o.normalize()
	var b [4]byte
	_, _ = rand.Read(b[:])
	tag := fmt.Sprintf("%s-%d-%s", o.IDPrefix, o.Now().UnixMilli(), hex.EncodeToString(b[:]))
	return &run{o: o, t: t, idTag: tag}
}

// intentOf returns the intent that resolves k again.
func (r *run) intentOf(k Key, at time.Time) intent.Intent {
	op := intent.Upsert
	if k.Deleted {
		op = intent.Delete
	}
	return intent.Intent{
		Table: r.t.Name, Key: k.Key, Op: op, Version: k.Stored,
		ID:      fmt.Sprintf("%s-%d", r.idTag, r.seq.Add(1)),
		ProxyID: r.o.ProxyID, CreatedAt: at, PublishedFloor: max(k.LastEvent, intent.NoEventFloor),
	}
}

// Keys reconciles the given keys (dead-letter redrive): one pass over the
// bus partitions they are on. It returns one Key per key, in order;
// duplicates are decided once and reported for each. A key the store
// fails to read is reported Unreadable (Key.Err), not failing the others;
// a store that is unavailable, closed or without the table (dropped
// meanwhile) fails the call.
func Keys(ctx context.Context, o Options, t Table, keys [][]byte) ([]Key, error) {
	r := newRun(o, t)
	r.perKey = true
	byPart := map[int32][][]byte{}
	seen := map[string]bool{}
	for _, k := range keys {
		if !seen[string(k)] {
			seen[string(k)] = true
			p := intentlog.Partition(k, t.Partitions)
			byPart[p] = append(byPart[p], k)
		}
	}
	got := map[string]Key{}
	for p, ks := range byPart {
		pr, err := r.partition(ctx, p, ks)
		if err != nil {
			return nil, err
		}
		err = pr.settle(ctx, ks, nil, func(k Key) { got[string(k.Key)] = k })
		if err != nil {
			return nil, err
		}
	}
	out := make([]Key, len(keys))
	for i, k := range keys {
		out[i] = got[string(k)]
	}
	return out, nil
}

// Run reconciles every key of a table, or only those of the partitions
// listed (all when nil). The store must be a store.Scanner. A key the
// store fails to read is reported (Report.Unreadable) and the others go
// on; the run then fails with ErrUnreadable, with the report. A store
// that is unavailable, closed or without the table (dropped meanwhile)
// fails the run at once.
func Run(ctx context.Context, o Options, t Table, partitions []int32) (Report, error) {
	var rep Report
	sc, ok := o.Store.(store.Scanner)
	if !ok {
		return rep, ErrNoScan
	}
	r := newRun(o, t)
	r.perKey = true
	only := map[int32]bool{}
	for _, p := range partitions {
		only[p] = true
	}
	var after []byte
	for done := false; !done; {
		// One chunk: keys from the store scan, up to ChunkBytes.
		chunk := map[int32][]store.KeyVersion{}
		size := 0
		for size < r.o.ChunkBytes {
			page, err := sc.ScanKeys(ctx, t.Name, after, pageKeys)
			if err != nil {
				return rep, fmt.Errorf("reconcile %s: %w", t.Name, err)
			}
			for _, kv := range page {
				p := intentlog.Partition(kv.Key, t.Partitions)
				if len(only) == 0 || only[p] {
					chunk[p] = append(chunk[p], kv)
					size += len(kv.Key) + 64
				}
			}
			if len(page) < pageKeys {
				done = true
				break
			}
			after = page[len(page)-1].Key
		}
		for p := range t.Partitions {
			kvs := chunk[p]
			if len(kvs) == 0 {
				continue
			}
			keys := make([][]byte, len(kvs))
			for i, kv := range kvs {
				keys[i] = kv.Key
			}
			pr, err := r.partition(ctx, p, keys)
			if err != nil {
				return rep, err
			}
			if err := pr.settle(ctx, keys, kvs, rep.add); err != nil {
				return rep, err
			}
		}
	}
	if rep.Unreadable > 0 {
		return rep, rep.unreadableError(t.Name)
	}
	return rep, nil
}
