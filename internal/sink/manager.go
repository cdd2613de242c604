package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/readahead"
)

// groupLease is the lease of the sinks' groups: what bounds a
// partition's drain and a commit. It never ends a sink's member
// (group.Groups.WithoutAckLease): the member lives in the process that
// delivers (it dies with it), and a batch may take longer than any lease
// (max_retry_ms up to a week per request, the attempts' timeouts, the
// wait for a slot, a 413's halves); ended, it started its retries over
// and was never dead-lettered. (A variable for tests.)
var groupLease = 7 * 24 * time.Hour

// Options configure a Manager.
type Options struct {
	Backend Backend
	Log     intentlog.Log
	// Table returns a served table (false: unknown or not served).
	Table func(name string) (group.Table, bool)
	// Incarnation, when set, returns a served table's created_at_us (0:
	// unknown): a sink created for an earlier table of the name is not
	// run for it.
	Incarnation func(name string) int64
	// Run: this process delivers (sinks.enabled); otherwise it only
	// manages definitions.
	Run          bool
	Refresh      time.Duration // how often definitions are read again (default 5s)
	DLQRetention time.Duration // of dead-letter topics (0: forever)
	// LetterOwner, when set, is what a sink's dead-letter topic is
	// recorded as made for (intentlog.TopicOptions.Owner): the sink's
	// table, by its name and created_at_us (0: unknown). On a log of one
	// process's own (embedded), the release of a table dropped elsewhere
	// deletes the topics made for it, its sinks' dead letters included.
	LetterOwner func(table string, tableCreatedUs int64) string
	Health      *health.Registry
	Registerer  prometheus.Registerer
	Logger      *slog.Logger
	Client      *http.Client // nil: NewHTTPClient
	// Snapshot serves start "snapshot" (nil: such sinks fail to start).
	Snapshot Snapshotter
	// Sharing, when set, runs each sink on one of the processes that
	// share it (a store and Kafka) at a time: a shared group with one
	// owner of every partition (group.Sharing.Exclusive), which moves
	// when that process stops or dies.
	Sharing *group.Sharing
	// ReadAhead bounds the bytes of events each sink's session holds read
	// ahead of its deliveries (api.subscription_buffer_bytes; 0: only by
	// its queues), within ReadAheadPool (api.max_subscription_buffered_bytes,
	// shared with the process's event streams; nil: none).
	ReadAhead     int64
	ReadAheadPool *readahead.Pool
	// CommitRefresh: how old the last commit of a sink's position may get
	// before it is committed again (api.group_commit_refresh; 0: the
	// group package's default).
	CommitRefresh time.Duration
	// RetentionGaps counts the retention gaps sinks' sessions meet (nil: none).
	RetentionGaps *group.RetentionGaps
}

// Manager keeps the definitions and runs the sinks of a process.
type Manager struct {
	defs         defs
	log          intentlog.Log
	table        func(string) (group.Table, bool)
	incarnation  func(string) int64
	groups       *group.Groups
	run          bool
	refresh      time.Duration
	dlqRetention time.Duration
	letterOwner  func(table string, tableCreatedUs int64) string
	health       *health.Registry
	metrics      *metrics
	logger       *slog.Logger
	client       *http.Client
	snapshot     Snapshotter

	// syncLock (a lock: one token) makes each Sync's read of the
	// definitions and its start and stop of runners one step: a Sync
	// that read before a Drop cannot apply after the Drop's own Sync and
	// start the dropped sink again. WhilePaused holds it through a reset
	// of a sink's group (and waits for it within its context: a Sync
	// holds it while a runner stops, which has no bound), and Close
	// until its runners stopped.
	syncLock chan struct{}
	mu       sync.Mutex
	runners  map[[2]string]*runner
	stats    map[[2]string]*stats // kept across restarts of a runner
	closed   bool
	stop     chan struct{}
	wg       sync.WaitGroup

	lagMu sync.Mutex // not mu: Sync holds mu while it waits for runners
	lagAt map[[2]string]time.Time
}

// New returns a Manager; Start runs its sinks.
func New(o Options) *Manager {
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Second
	}
	if o.Health == nil {
		o.Health = health.NewRegistry(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Client == nil {
		o.Client = NewHTTPClient(nil)
	}
	groups := group.New(o.Log, groupLease).WithoutAckLease().WithReadAhead(o.ReadAhead, o.ReadAheadPool).WithLogger(o.Logger).
		WithRetentionGaps(o.RetentionGaps)
	if o.CommitRefresh > 0 {
		groups.WithCommitRefresh(o.CommitRefresh)
	}
	if o.Sharing != nil {
		sh := *o.Sharing
		sh.Exclusive = true
		groups.Share(sh)
	}
	return &Manager{defs: newDefs(o.Backend), log: o.Log, table: o.Table, incarnation: o.Incarnation, groups: groups, run: o.Run,
		refresh: o.Refresh, dlqRetention: o.DLQRetention, letterOwner: o.LetterOwner, health: o.Health, metrics: newMetrics(o.Registerer),
		logger: o.Logger, client: o.Client, snapshot: o.Snapshot, runners: map[[2]string]*runner{}, stats: map[[2]string]*stats{},
		lagAt: map[[2]string]time.Time{}, stop: make(chan struct{}), syncLock: make(chan struct{}, 1)}
}

// LetterOwner is what the dead-letter topic of a sink of the table
// created at tableCreatedUs is recorded as made for (Options.LetterOwner;
// empty: nothing).
func (m *Manager) LetterOwner(table string, tableCreatedUs int64) string {
	if m.letterOwner == nil {
		return ""
	}
	return m.letterOwner(table, tableCreatedUs)
}

// Start runs the sinks defined (when this process runs sinks) and follows
// the definitions until Close.
func (m *Manager) Start(ctx context.Context) {
	if !m.run {
		return
	}
	if err := m.Sync(ctx); err != nil {
		m.logger.Warn("sinks: cannot read their definitions; retrying", "err", err)
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(m.refresh)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), m.refresh)
				if err := m.Sync(ctx); err != nil {
					m.health.Set("sinks", health.Degraded, "sink definitions cannot be read: "+err.Error(), "check the store")
				} else {
					m.health.Clear("sinks")
				}
				cancel()
			}
		}
	}()
}

// Close stops every sink (a batch in flight is delivered again by the
// next run: it was not acknowledged) and waits for them.
func (m *Manager) Close() {
	// Under the sync lock until the runners stopped: a reset
	// (WhilePaused) that finds none here runs after their last commits.
	// (Released before the wait for Start's loop, whose Sync takes it.)
	m.lockSync()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.unlockSync()
		return
	}
	m.closed = true
	close(m.stop)
	rs := m.runners
	m.runners = map[[2]string]*runner{}
	m.mu.Unlock()
	for _, r := range rs {
		r.cancel()
	}
	for _, r := range rs {
		<-r.done
	}
	m.unlockSync()
	m.wg.Wait()
	m.groups.Close()
}

// Sync reads the definitions and starts, stops or restarts runners to
// match them.
func (m *Manager) Sync(ctx context.Context) error {
	if !m.run {
		return nil
	}
	select {
	case m.syncLock <- struct{}{}:
	default:
		runHook(&testHookSyncWaits)
		m.lockSync()
	}
	defer m.unlockSync()
	sinks, _, err := m.defs.load(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	want := map[[2]string]*wailv1.Sink{}
	for _, s := range sinks {
		if _, ok := m.table(s.Table); ok && !s.Paused && m.current(s) {
			// Read from the store, which another version (or a hand
			// edit) may have written without a setting a create fills
			// in: a timeout or retry time of 0 dead-lettered everything.
			want[[2]string{s.Table, s.Name}] = WithDefaults(s)
		}
	}
	defined := map[[2]string]bool{}
	for _, s := range sinks {
		defined[[2]string{s.Table, s.Name}] = true
	}
	for k, r := range m.runners {
		if s, ok := want[k]; !ok || !proto.Equal(s, r.def) {
			r.cancel()
			runHook(&testHookStopping)
			<-r.done
			delete(m.runners, k)
		}
	}
	// A dropped sink's series leave /metrics, and its counters go: also
	// when it was not running at the drop (paused, its table not served
	// here), when its runner had stopped at an earlier Sync.
	for k := range m.stats {
		if !defined[k] && m.runners[k] == nil {
			m.metrics.forget(k[0], k[1])
			delete(m.stats, k)
		}
	}
	for k, s := range want {
		if m.runners[k] != nil {
			continue
		}
		t, _ := m.table(s.Table)
		st := m.stats[k]
		if st == nil {
			st = &stats{}
			m.stats[k] = st
		}
		rctx, cancel := context.WithCancel(context.Background())
		r := &runner{m: m, def: s, table: t, stats: st, cancel: cancel, done: make(chan struct{}),
			pol: policy{maxAttempts: int(s.MaxAttempts), maxRetry: millis(s.MaxRetryMs),
				backoffMin: millis(s.BackoffMinMs), backoffMax: millis(s.BackoffMaxMs)}}
		m.runners[k] = r
		go r.run(rctx)
	}
	return nil
}

// Create saves a definition (with defaults); the same definition again
// is not an error (created false).
func (m *Manager) Create(ctx context.Context, s *wailv1.Sink) (_ *wailv1.Sink, created bool, err error) {
	c, err := m.CreateSink(ctx, s)
	return c.Sink, c.Created, err
}

// Created is what a CreateSink did.
type Created struct {
	Sink    *wailv1.Sink // the definition saved, without its secret
	Created bool         // false: the same definition was there already
	// Resumed: the name's group (sink.NAME) had committed positions when
	// the definition was saved, those of a sink of the name dropped
	// before (a drop keeps them): the sink goes on from them and its
	// start was not applied.
	Resumed bool
}

// CreateSink is Create, also saying whether the sink resumes the
// positions of one of its name dropped before.
func (m *Manager) CreateSink(ctx context.Context, s *wailv1.Sink) (_ Created, err error) {
	def := WithDefaults(s)
	if err := Validate(def); err != nil {
		return Created{}, err
	}
	t, ok := m.table(def.Table)
	if !ok {
		return Created{}, fmt.Errorf("%w: table %q does not exist (or is not served yet)", ErrNotFound, def.Table)
	}
	if def.Start == StartSnapshot && m.snapshot == nil {
		return Created{}, fmt.Errorf("%w: start snapshot: this server cannot take snapshots", ErrInvalid)
	}
	// Read before the definition is saved (a runner commits positions
	// once it runs). A read that fails only leaves Resumed unset: the
	// create itself does not depend on it.
	_, had, herr := m.groups.Describe(ctx, t, GroupName(def.Name))
	resumed := herr == nil && had != nil
	def.TableCreatedAtUs = m.incarnationOf(def.Table)
	created := false
	_, err = m.defs.change(ctx, func(sinks []*wailv1.Sink) ([]*wailv1.Sink, error) {
		if i := find(sinks, def.Table, def.Name); i >= 0 {
			if old := sinks[i].TableCreatedAtUs; old != 0 && old < def.TableCreatedAtUs {
				// Left by a create that raced the drop of an earlier
				// table of the name: never run for this one.
				created, sinks[i] = true, def
				return sinks, nil
			}
			if !sameDefinition(sinks[i], def) {
				return nil, fmt.Errorf("%w: %s of table %s (drop it first to change it)", ErrConflict, def.Name, def.Table)
			}
			return nil, errUnchanged
		}
		created = true
		return append(sinks, def), nil
	})
	if err != nil {
		return Created{}, err
	}
	if def.Start == "latest" {
		// Also when the same definition is there already: a create that
		// saved it and then failed (or was cancelled) before committing
		// the start is completed by the same create again (startAtEnd
		// leaves a group that has a position alone).
		if err := m.startAtEnd(ctx, def); err != nil && (created || !errors.Is(err, group.ErrMembers)) {
			return Created{Created: created}, fmt.Errorf("sink %s of %s created, but its start could not be committed (it starts where it first runs; create it again to commit it): %w",
				def.Name, def.Table, err)
		}
	}
	return Created{Sink: Public(def), Created: created, Resumed: created && resumed}, m.Sync(ctx)
}

// incarnationOf returns a served table's created_at_us (0: unknown).
func (m *Manager) incarnationOf(table string) int64 {
	if m.incarnation == nil {
		return 0
	}
	return m.incarnation(table)
}

// current: a definition is of the table served under its name (a create
// that raced the table's drop may have saved one after the drop removed
// the table's sinks; a table created again must not run it).
func (m *Manager) current(s *wailv1.Sink) bool {
	inc := m.incarnationOf(s.Table)
	return s.TableCreatedAtUs == 0 || inc == 0 || s.TableCreatedAtUs == inc
}

// startAtEnd commits the current end of every partition as the position
// of a new "latest" sink whose group has none, so that it delivers every
// event after the create, however late a process starts running it (a
// runner joining later would otherwise start at the end of then).
func (m *Manager) startAtEnd(ctx context.Context, def *wailv1.Sink) error {
	t, _ := m.table(def.Table)
	name := GroupName(def.Name)
	_, parts, err := m.groups.Describe(ctx, t, name)
	if err != nil || parts != nil {
		return err // parts: the group of an earlier sink of that name resumes
	}
	offsets := make(map[int32]int64, t.Partitions)
	for p := range t.Partitions {
		_, end, err := m.log.Bounds(ctx, t.Topic, p)
		if err != nil {
			return fmt.Errorf("end of partition %d: %w", p, err)
		}
		offsets[p] = end
	}
	return m.groups.Reset(ctx, t, name, offsets)
}

// SetPaused pauses or resumes a sink.
func (m *Manager) SetPaused(ctx context.Context, table, name string, paused bool) (*wailv1.Sink, error) {
	var out *wailv1.Sink
	_, err := m.defs.change(ctx, func(sinks []*wailv1.Sink) ([]*wailv1.Sink, error) {
		i := find(sinks, table, name)
		if i < 0 {
			return nil, notFound(table, name)
		}
		out = sinks[i]
		if sinks[i].Paused == paused {
			return nil, errUnchanged
		}
		c := cloneSink(sinks[i])
		c.Paused = paused
		sinks[i], out = c, c
		return sinks, nil
	})
	if err != nil {
		return nil, err
	}
	runHook(&testHookPauseRecorded)
	return Public(out), m.Sync(ctx)
}

// Drop removes a sink's definition and stops it.
func (m *Manager) Drop(ctx context.Context, table, name string) error {
	_, err := m.defs.change(ctx, func(sinks []*wailv1.Sink) ([]*wailv1.Sink, error) {
		i := find(sinks, table, name)
		if i < 0 {
			return nil, notFound(table, name)
		}
		return append(sinks[:i:i], sinks[i+1:]...), nil
	})
	if err != nil {
		return err
	}
	return m.Sync(ctx)
}

// TableSinks returns the names of a table's sinks.
func (m *Manager) TableSinks(ctx context.Context, table string) ([]string, error) {
	sinks, _, err := m.defs.load(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range sinks {
		if s.GetTable() == table {
			names = append(names, s.GetName())
		}
	}
	return names, nil
}

// TableDrop is a table's drop as its sinks see it: which definitions it
// removes. The drop may reach them late: another drop of the table
// finished meanwhile, and the table was created again under the name,
// with sinks of its own.
type TableDrop struct {
	Table string
	// CreatedAtUs is the dropped table's created_at, Unix microseconds
	// (0: unknown).
	CreatedAtUs int64
	// Held reports whether the catalog still holds the dropped table's
	// entry (marked deleting): while it does, no table of the name can
	// have been created again. nil: never known.
	Held func(ctx context.Context) (bool, error)
}

// owns: s is a sink of the dropped table. While the catalog holds the
// dropped table's entry (held), no table of the name can have been created
// again: every sink of the name is the dropped table's, or an earlier
// one's (left by a create that raced that table's drop). Once it does not
// (the drop reached the sinks late), only a definition that records the
// dropped table (table_created_at_us its created_at) is: one that records
// another could be a table's created again since, and created_at is the
// creating process's clock, so a table created again on a process whose
// clock is behind records an earlier one than the dropped table's.
func (d TableDrop) owns(s *wailv1.Sink, held bool) bool {
	switch {
	case s.GetTable() != d.Table:
		return false
	case held:
		return true
	default:
		return s.TableCreatedAtUs != 0 && s.TableCreatedAtUs == d.CreatedAtUs
	}
}

// owned returns the sinks of sinks d owns. Held is asked only when a
// definition depends on it; the caller reads sinks before: a table
// created again after a read that found the dropped table held could
// not have had sinks in what was read.
func (d TableDrop) owned(ctx context.Context, sinks []*wailv1.Sink) (own, keep []*wailv1.Sink, err error) {
	held, asked := false, false
	for _, s := range sinks {
		if s.GetTable() == d.Table && !d.owns(s, false) && !asked {
			asked = true
			if d.Held != nil {
				if held, err = d.Held(ctx); err != nil {
					return nil, nil, fmt.Errorf("sinks: is table %s still being dropped: %w", d.Table, err)
				}
			}
		}
		if d.owns(s, held) {
			own = append(own, s)
		} else {
			keep = append(keep, s)
		}
	}
	return own, keep, nil
}

// DroppedSinks returns the names of the sinks a table's drop removes (d
// owns), for their dead letters' topics to be deleted by name.
func (m *Manager) DroppedSinks(ctx context.Context, d TableDrop) ([]string, error) {
	sinks, _, err := m.defs.load(ctx)
	if err != nil {
		return nil, err
	}
	own, _, err := d.owned(ctx, sinks)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(own))
	for _, s := range own {
		names = append(names, s.GetName())
	}
	return names, nil
}

// DropTable removes the definitions of the sinks of a dropped table (d
// owns; their dead letters' topics are deleted first) and stops them.
// The definitions are swapped for the rest from the bytes read: a sink
// created meanwhile is kept.
func (m *Manager) DropTable(ctx context.Context, d TableDrop) error {
	dropped := false
	_, err := m.defs.change(ctx, func(sinks []*wailv1.Sink) ([]*wailv1.Sink, error) {
		own, keep, err := d.owned(ctx, sinks)
		if err != nil {
			return nil, err
		}
		if dropped = len(own) > 0; !dropped {
			return nil, errUnchanged
		}
		return keep, nil
	})
	if err != nil || !dropped {
		return err
	}
	return m.Sync(ctx)
}

func notFound(table, name string) error {
	return fmt.Errorf("%w: table %s has no sink %q: `wail sink ls %s` lists them", ErrNotFound, table, name, table)
}

// List returns the status of a table's sinks.
func (m *Manager) List(ctx context.Context, table string) ([]*wailv1.SinkStatus, error) {
	sinks, _, err := m.defs.load(ctx)
	if err != nil {
		return nil, err
	}
	var out []*wailv1.SinkStatus
	for _, s := range sinks {
		if s.Table != table {
			continue
		}
		st, err := m.status(ctx, s)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Describe returns a sink's status.
func (m *Manager) Describe(ctx context.Context, table, name string) (*wailv1.SinkStatus, error) {
	sinks, _, err := m.defs.load(ctx)
	if err != nil {
		return nil, err
	}
	i := find(sinks, table, name)
	if i < 0 {
		return nil, notFound(table, name)
	}
	return m.status(ctx, sinks[i])
}

func (m *Manager) status(ctx context.Context, s *wailv1.Sink) (*wailv1.SinkStatus, error) {
	k := [2]string{s.Table, s.Name}
	m.mu.Lock()
	r, st := m.runners[k], m.stats[k]
	m.mu.Unlock()
	out := &wailv1.SinkStatus{Sink: Public(s), DeadLetterTopic: DeadLetterTopic(s.Table, s.Name)}
	switch {
	case s.Paused:
		out.State = "paused"
	case r == nil:
		out.State = "stopped"
	case st.inSnapshot.Load():
		out.State = "snapshot"
	case st.retrying.Load():
		out.State = "retrying"
	default:
		out.State = "running"
	}
	if st != nil {
		out.DeliveredEvents, out.DeliveredBatches = st.delivered.Load(), st.batches.Load()
		out.Retries, out.DeadLetteredEvents = st.retries.Load(), st.deadLettered.Load()
		out.LastDeliveredAtMs = st.lastDelivered.Load()
		out.SnapshotEvents = st.snapshotEvents.Load()
		st.mu.Lock()
		out.LastError = st.lastErr
		if !st.lastErrAt.IsZero() {
			out.LastErrorAtMs = st.lastErrAt.UnixMilli()
		}
		st.mu.Unlock()
	}
	if t, ok := m.table(s.Table); ok {
		_, parts, err := m.groups.Describe(ctx, t, GroupName(s.Name))
		if err != nil {
			return nil, err
		}
		for _, p := range parts {
			gp := &wailv1.GroupPartition{Partition: p.Partition, Committed: p.Committed, End: p.End, Owner: p.Owner, Epoch: p.Epoch,
				Lag: p.End - max(p.Committed, 0)}
			out.Partitions = append(out.Partitions, gp)
			out.Lag += gp.Lag
		}
	}
	return out, nil
}

// updateLag sets a sink's lag gauge, at most once a second.
func (m *Manager) updateLag(ctx context.Context, r *runner) {
	k := [2]string{r.def.Table, r.def.Name}
	m.lagMu.Lock()
	if time.Since(m.lagAt[k]) < time.Second {
		m.lagMu.Unlock()
		return
	}
	m.lagAt[k] = time.Now()
	m.lagMu.Unlock()
	_, parts, err := m.groups.Describe(ctx, r.table, GroupName(r.def.Name))
	if err != nil {
		return // the next ack or attempt tries again
	}
	var lag int64
	for _, p := range parts {
		lag += p.End - max(p.Committed, 0)
	}
	m.metrics.lag.WithLabelValues(r.labels()...).Set(float64(lag))
}

// Apply saves a definition of the configuration: created when absent,
// made to match when it differs (its paused state kept).
func (m *Manager) Apply(ctx context.Context, s *wailv1.Sink) error {
	def := WithDefaults(s)
	def.TableCreatedAtUs = 0 // any table of the name: the configuration defines it
	if err := Validate(def); err != nil {
		return err
	}
	_, err := m.defs.change(ctx, func(sinks []*wailv1.Sink) ([]*wailv1.Sink, error) {
		i := find(sinks, def.Table, def.Name)
		if i < 0 {
			return append(sinks, def), nil
		}
		def.Paused = sinks[i].Paused
		if proto.Equal(sinks[i], def) {
			return nil, errUnchanged
		}
		sinks[i] = def
		return sinks, nil
	})
	return err
}

// millis is a definition's milliseconds as a duration, within 0..7 days
// (what Validate takes; a definition stored before it checked the bound
// cannot overflow into a negative wait).
func millis(ms int64) time.Duration {
	return time.Duration(min(max(ms, 0), maxBackoffMs)) * time.Millisecond
}
