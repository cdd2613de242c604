package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// Options configures a Log. Zero values mean the defaults.
type Options struct {
	// SegmentBytes rolls the active segment once the next batch would take
	// it past this size (default 64 MiB, at most 1 GiB).
	SegmentBytes int64
	// IndexIntervalBytes is the log distance between sparse index entries
	// (default 4 KiB).
	IndexIntervalBytes int64
	// MaxBatchBytes bounds one Append's encoded size and one written batch
	// (default 16 MiB, at most 1 GiB). Larger Appends fail with ErrTooLarge.
	MaxBatchBytes int64
	// MaxRecordBytes bounds one encoded record (default 1 MiB, like Kafka's
	// default, so that applications behave the same on both). Larger records
	// fail with ErrTooLarge.
	MaxRecordBytes int64
	// NoSync skips every fsync. For tests and benchmarks only: an Append
	// then returns once written to the page cache, not once durable.
	NoSync bool
	// SyncFilesystem makes every partition share one syncfs(2) of the
	// log's filesystem per round instead of an fsync of its own segment
	// per batch (sync.go): less CPU per batch, but each round also writes
	// back every other dirty file of that filesystem, so use it when the
	// log has a volume of its own. Where syncfs is unsupported (not Linux,
	// Linux < 5.8, whose syncfs does not report write-back errors), Open
	// logs a warning and fsyncs per file.
	SyncFilesystem bool
	// RetentionCheckInterval is how often retention runs besides at each
	// segment roll (default 1 minute; negative: only at rolls).
	RetentionCheckInterval time.Duration
	// Logger receives recovery and retention messages (default
	// slog.Default()).
	Logger *slog.Logger
	// Now is the clock for record timestamps and retention (default
	// time.Now).
	Now func() time.Time
	// OnHealth, if set, is called with Health's new result whenever it
	// changes (a partition ran out of space, broke or failed a read, or
	// recovered, or DeleteTopic took such a partition away). It is called
	// from the log's goroutines (and those of DeleteTopic and of reads),
	// never concurrently with itself, and must not block or call back
	// into the Log.
	OnHealth func(error)
	// SpaceProbeInterval is how often, while the disk is full, the log
	// writes a small probe file to notice that space returned, and, while
	// a partition's reads fail, reads again where it failed (default 1s).
	SpaceProbeInterval time.Duration
	// MaxOpenFiles bounds the segment files open at once (default: a
	// quarter of the soft RLIMIT_NOFILE, between 64 and 4096). Segment
	// files are opened when read or written; the least recently used idle
	// one is closed when another must open, and when all are in use the
	// next reader or writer waits for one.
	MaxOpenFiles int
	// FS is the filesystem (default vfs.Default, the operating system's);
	// tests inject faults and crashes through it.
	FS vfs.FS
}

const maxPartitions = 1 << 16

// checkPartitions accepts a partition count of 1 to maxPartitions.
func checkPartitions(n int32) error {
	if n <= 0 || n > maxPartitions {
		return fmt.Errorf("partition count %d out of range [1, %d]", n, maxPartitions)
	}
	return nil
}

func (o *Options) normalize() error {
	def := func(v *int64, d, limit int64, name string) error {
		switch {
		case *v == 0:
			*v = d
		case *v < 0 || *v > limit:
			return fmt.Errorf("option %s = %d out of range (0, %d]", name, *v, limit)
		}
		return nil
	}
	if err := errors.Join(
		def(&o.SegmentBytes, 64<<20, 1<<30, "SegmentBytes"),
		def(&o.IndexIntervalBytes, 4<<10, 1<<30, "IndexIntervalBytes"),
		def(&o.MaxBatchBytes, 16<<20, 1<<30, "MaxBatchBytes"),
	); err != nil {
		return err
	}
	if o.MaxBatchBytes <= batchHeaderLen {
		return fmt.Errorf("option MaxBatchBytes = %d too small", o.MaxBatchBytes)
	}
	if err := def(&o.MaxRecordBytes, min(1<<20, o.MaxBatchBytes-batchHeaderLen), 1<<30, "MaxRecordBytes"); err != nil {
		return err
	}
	if o.RetentionCheckInterval == 0 {
		o.RetentionCheckInterval = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch {
	case o.MaxOpenFiles == 0:
		o.MaxOpenFiles = defaultMaxOpenFiles()
	case o.MaxOpenFiles < 0:
		return fmt.Errorf("option MaxOpenFiles = %d is negative", o.MaxOpenFiles)
	}
	if o.SpaceProbeInterval <= 0 {
		o.SpaceProbeInterval = time.Second
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	return nil
}

// topic is an open topic. Its fields but opts, offMu and groups are
// immutable.
type topic struct {
	name string
	dir  string
	opts intentlog.TopicOptions // guarded by Log.createMu once the topic is shared
	// unstored: opts differ from the meta file (a full disk; createMu).
	unstored bool
	parts    []*partition

	offMu   sync.Mutex                 // guards groups, commits and deleted
	groups  map[string]map[int32]int64 // cache of loaded offsets files (durable)
	commits map[string]*groupCommit    // commits merging per group (offsets.go)
	deleted bool                       // DeleteTopic moved the directory away
	// faultMu guards groupFaults: the failed reads of offsets files by
	// group (offsetshealth.go). A leaf: nothing is locked under it.
	faultMu     sync.Mutex
	groupFaults map[string]error
	// offIO is held shared while an offsets file is written, exclusively
	// by DeleteTopic while it moves the directory away.
	offIO sync.RWMutex
}

// Log is the embedded log. It is safe for concurrent use.
type Log struct {
	dir      string
	opts     Options
	fs       vfs.FS
	files    *fileCache
	lockFile io.Closer
	syncer   *syncer // nil with NoSync

	createMu sync.Mutex   // serializes CreateTopic, DeleteTopic; Close waits for it
	mu       sync.RWMutex // guards topics and closed
	topics   map[string]*topic
	closed   bool
	closing  chan struct{} // closed by Close

	wg sync.WaitGroup // writers, the retention and space loops

	// lastTS is the newest timestamp written to any partition (unix µs):
	// a batch is stamped no earlier, so timestamps never go back across
	// the log either. A record appended after another was read is
	// stamped no earlier, whatever its topic: a scan of one topic from a
	// record's timestamp in another (the resolver's, of the event bus and
	// the dead-letter topic from an intent's) finds what was written
	// after that record, also after the clock stepped back.
	lastTS atomic.Int64

	// testHookOffsetsWrite, if set, runs before each offsets file write.
	testHookOffsetsWrite func(group string)
	// testHookCommitted, if set, runs in Committed once it found the topic.
	testHookCommitted func(topic string)
	// testHookPartition, if set, runs in partition once it found the
	// partition (op is the operation's name).
	testHookPartition func(op string)

	// recordLimit is what RecordLimit says: computed once, the proxy asks
	// for every write.
	recordLimit       int64
	recordLimitSource string

	healthMu   sync.Mutex // serializes OnHealth calls
	warnings   []string   // found by Open; immutable after
	lastHealth string
	closeOnce  sync.Once
	closeErr   error
}

var (
	_ intentlog.Log         = (*Log)(nil)
	_ intentlog.OwnerLister = (*Log)(nil)
)

// Open opens (creating it if needed) the log stored in dir and recovers
// every partition; see the package comment. Only one Log may have dir open.
func Open(dir string, opts Options) (*Log, error) {
	if err := opts.normalize(); err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	if err := opts.FS.MkdirAll(dir, 0o755); err != nil {
		return nil, openErr(dir, err)
	}
	// The directory may have just been created: make its entry durable, or
	// a crash could lose the whole log with acknowledged records in it.
	if !opts.NoSync {
		if err := opts.FS.SyncDir(filepath.Dir(filepath.Clean(dir))); err != nil {
			return nil, openErr(dir, fmt.Errorf("sync parent directory: %w", err))
		}
	}
	lock, err := opts.FS.Lock(filepath.Join(dir, lockFileName))
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, fmt.Errorf("embedded: open %s: another wail process uses this data dir (a wail serve, proxy or resolve, or a wail log repair): "+
			"stop it, or give this one another --data-dir (fuser -v %s names it): %w", dir, filepath.Join(dir, lockFileName), errors.Unwrap(err))
	}
	if err != nil {
		return nil, openErr(dir, err)
	}
	l := &Log{dir: dir, opts: opts, fs: opts.FS, files: newFileCache(opts.FS, opts.MaxOpenFiles), lockFile: lock, topics: map[string]*topic{}, closing: make(chan struct{})}
	l.lastTS.Store(math.MinInt64)
	l.recordLimit = min(opts.MaxRecordBytes, opts.MaxBatchBytes-batchHeaderLen)
	l.recordLimitSource = fmt.Sprintf("the embedded log's record limit of %d bytes", l.recordLimit)
	err = l.loadTopics()
	if err == nil && !opts.NoSync {
		err = l.syncRecovered()
	}
	if err == nil && opts.SyncFilesystem && !opts.NoSync {
		var fss vfs.FilesystemSync
		fss, err = openFilesystemSync(opts.FS, dir)
		switch {
		case err == nil:
			l.syncer = newSyncer(fss)
		case errors.Is(err, vfs.ErrFilesystemSyncUnsupported):
			opts.Logger.Warn("embedded: SyncFilesystem is not supported here; each partition fsyncs its own files", "err", err)
			err = nil
		}
	}
	if err != nil {
		for _, t := range l.topics {
			t.closeFiles()
		}
		_ = lock.Close()
		return nil, openErr(dir, err)
	}
	for _, t := range l.topics {
		l.startWriters(t)
	}
	if opts.RetentionCheckInterval > 0 {
		l.wg.Go(func() { l.every(opts.RetentionCheckInterval, l.enforceRetention) })
	}
	l.wg.Go(func() { l.every(opts.SpaceProbeInterval, l.probeWhileFull) })
	// Apart from the space probe: a read of a bad sector can take long.
	l.wg.Go(func() {
		l.every(opts.SpaceProbeInterval, func() {
			l.probeReads()
			l.probeGroups()
		})
	})
	return l, nil
}

// openErr is Open's error: a file operation's wraps ErrStorage (or
// ErrNoSpace), and since it stops the start it says what to run (damage,
// ErrCorrupt, names its own fix).
func openErr(dir string, err error) error {
	err = fileErr(err)
	access := vfs.AccessAdvice(dir, err)
	switch {
	case errors.Is(err, intentlog.ErrCorrupt) || !errors.Is(err, intentlog.ErrStorage):
	case errors.Is(err, intentlog.ErrNoSpace):
		return fmt.Errorf("embedded: open %s: %w; free space on its disk (df -h %s) and start again", dir, err, dir)
	case access != nil:
		return fmt.Errorf("embedded: open %s: %w", dir, access)
	default:
		return fmt.Errorf("embedded: open %s: %w; check its disk (dmesg, smartctl -a) and start again; "+
			"a file the disk cannot read any more: restore %s from a backup (with the rest of the data dir)", dir, err, dir)
	}
	return fmt.Errorf("embedded: open %s: %w", dir, err)
}

func (l *Log) loadTopics() error {
	ents, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return err
	}
	l.removeDeleted(ents)
	for _, e := range ents {
		if !e.IsDir() || validateName("topic", e.Name()) != nil {
			continue
		}
		dir := filepath.Join(l.dir, e.Name())
		m, err := readMeta(l.fs, dir)
		if errors.Is(err, fs.ErrNotExist) {
			l.opts.Logger.Warn("embedded: ignoring topic directory without meta (interrupted CreateTopic)", "dir", dir)
			continue
		}
		if err != nil {
			return err
		}
		t, err := l.openTopic(e.Name(), m, false)
		if err != nil {
			return err
		}
		l.topics[t.name] = t
		if err := l.clampOffsets(t); err != nil {
			return fmt.Errorf("topic %s: %w", t.name, err)
		}
	}
	return nil
}

// recoverySyncs bounds the partitions syncRecovered syncs at once: fsyncs
// of different files share the journal's commits.
const recoverySyncs = 16

// syncRecovered makes durable what Open recovered and appends will build
// on: each partition's active segment and directory. A process killed
// after a batch's write but before its fsync (or whose fsync and truncate
// failed) leaves the batch in the page cache, where recovery reads it
// back as valid; one killed in a roll leaves a segment whose name is not
// durable. Built on as they are, a roll would seal the batch and a power
// loss take it from under records acknowledged later (Open then refuses
// to start), and records fsync'd into the segment would go with its name
// (TestOpenMakesWhatItKeepsDurable).
func (l *Log) syncRecovered() error {
	var g errgroup.Group
	g.SetLimit(recoverySyncs)
	for _, t := range l.topics {
		for _, p := range t.parts {
			g.Go(func() error {
				f, err := l.files.acquire(p.active)
				if err != nil {
					return fmt.Errorf("topic %s partition %d: %w", t.name, p.id, err)
				}
				err = f.Sync()
				l.files.release(p.active)
				if err == nil {
					err = l.fs.SyncDir(p.dir)
				}
				if err != nil {
					return fmt.Errorf("topic %s partition %d: %w", t.name, p.id, err)
				}
				return nil
			})
		}
	}
	return g.Wait()
}

// openTopic opens the partitions of a topic, or creates them (create: the
// topic has no meta yet).
func (l *Log) openTopic(name string, m topicMeta, create bool) (*topic, error) {
	t := &topic{name: name, dir: filepath.Join(l.dir, name), opts: m.options(), groups: map[string]map[int32]int64{},
		commits: map[string]*groupCommit{}}
	for i := range m.Partitions {
		p, err := openPartition(l, name, t.dir, i, t.opts, create)
		if err != nil {
			t.closeFiles()
			return nil, fmt.Errorf("partition %d: %w", i, err)
		}
		t.parts = append(t.parts, p)
	}
	return t, nil
}

func (t *topic) closeFiles() {
	for _, p := range t.parts {
		_ = p.closeFiles()
	}
}

// startWriters starts the topic's writer goroutines; call it with l.mu held
// or before the Log is shared.
func (l *Log) startWriters(t *topic) {
	for _, p := range t.parts {
		l.wg.Go(p.run)
	}
}

// lookup returns an open topic.
func (l *Log) lookup(name string) (*topic, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, intentlog.ErrClosed
	}
	t, ok := l.topics[name]
	if !ok {
		return nil, intentlog.ErrUnknownTopic
	}
	return t, nil
}

// partition returns a partition, with errors wrapped for op.
func (l *Log) partition(op, topic string, id int32) (*partition, error) {
	t, err := l.lookup(topic)
	if err != nil {
		return nil, fmt.Errorf("embedded: %s %s/%d: %w", op, topic, id, err)
	}
	if id < 0 || int(id) >= len(t.parts) {
		return nil, fmt.Errorf("embedded: %s %s/%d: topic has %d partitions: %w",
			op, topic, id, len(t.parts), intentlog.ErrUnknownTopic)
	}
	if l.testHookPartition != nil {
		l.testHookPartition(op)
	}
	return t.parts[id], nil
}

// CreateTopic implements intentlog.Log. An existing topic takes opts: they
// replace its stored ones durably (its meta file, atomically), and a
// retention that changed is applied at once. Its owner (opts.Owner) is
// kept when opts names none, taken when it had none, and another one
// fails with intentlog.ErrOwnedElsewhere.
func (l *Log) CreateTopic(ctx context.Context, name string, partitions int32, opts intentlog.TopicOptions) error {
	if err := l.createTopic(ctx, name, partitions, opts); err != nil {
		return fmt.Errorf("embedded: create topic %s: %w", name, err)
	}
	return nil
}

func (l *Log) createTopic(ctx context.Context, name string, partitions int32, opts intentlog.TopicOptions) error {
	if err := validateName("topic", name); err != nil {
		return err
	}
	if err := checkPartitions(partitions); err != nil {
		return err
	}
	if opts.Retention < 0 || opts.RetentionBytes < 0 {
		return errors.New("negative retention")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	l.createMu.Lock()
	defer l.createMu.Unlock()
	if t, err := l.lookup(name); err == nil {
		if n := int32(len(t.parts)); n != partitions {
			return fmt.Errorf("has %d partitions, asked for %d: %w", n, partitions, intentlog.ErrPartitionMismatch)
		}
		switch {
		case opts.Owner == "":
			opts.Owner = t.opts.Owner // claims nothing: keeps its owner
		case t.opts.Owner != "" && t.opts.Owner != opts.Owner:
			return fmt.Errorf("made for %q, asked for %q: %w", t.opts.Owner, opts.Owner, intentlog.ErrOwnedElsewhere)
		}
		return l.reconfigure(t, opts)
	} else if !errors.Is(err, intentlog.ErrUnknownTopic) {
		return err
	}
	t, err := l.makeTopic(name, metaFor(partitions, opts))
	if err != nil {
		return storageErr(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// Even when Close began meanwhile: the topic is made (durably), and
	// Close, waiting for createMu, stops it with the others.
	l.topics[name] = t
	l.startWriters(t)
	return nil
}

// makeTopic creates a topic's directories and files; writing meta last
// commits the creation.
func (l *Log) makeTopic(name string, m topicMeta) (*topic, error) {
	dir := filepath.Join(l.dir, name)
	// A directory without meta is an interrupted creation: start over.
	if err := l.fs.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := l.fs.MkdirAll(filepath.Join(dir, offsetsDir), 0o755); err != nil {
		return nil, err
	}
	t, err := l.openTopic(name, m, true)
	if err == nil {
		err = writeMeta(l.fs, dir, m, l.opts.NoSync)
		if err != nil {
			t.closeFiles()
		}
	}
	if err == nil && !l.opts.NoSync {
		if err = l.fs.SyncDir(l.dir); err != nil {
			t.closeFiles()
		}
	}
	if err != nil {
		_ = l.fs.RemoveAll(dir)
		return nil, err
	}
	return t, nil
}

// TopicOwners implements intentlog.OwnerLister.
func (l *Log) TopicOwners(context.Context) (map[string]string, error) {
	l.createMu.Lock() // guards the topics' opts
	defer l.createMu.Unlock()
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, fmt.Errorf("embedded: topic owners: %w", intentlog.ErrClosed)
	}
	owners := map[string]string{}
	for name, t := range l.topics {
		if t.opts.Owner != "" {
			owners[name] = t.opts.Owner
		}
	}
	return owners, nil
}

// Partitions implements intentlog.Log.
func (l *Log) Partitions(ctx context.Context, topic string) (int32, error) {
	t, err := l.lookup(topic)
	if err != nil {
		return 0, fmt.Errorf("embedded: partitions %s: %w", topic, err)
	}
	return int32(len(t.parts)), nil
}

// Append implements intentlog.Log. Records are encoded by the caller's
// goroutine, queued on each partition's writer and acknowledged once the
// writer's batch holding them is fsync'd.
func (l *Log) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	t, err := l.lookup(topic)
	if err != nil {
		return fmt.Errorf("embedded: append %s: %w", topic, err)
	}
	if len(recs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ids, reqs, which, body, err := l.encode(t, recs)
	if err != nil {
		return fmt.Errorf("embedded: append %s: %w", topic, err)
	}
	for i, r := range reqs {
		if err := t.parts[ids[i]].enqueue(r); err != nil {
			return fmt.Errorf("embedded: append %s/%d: %w", topic, ids[i], err)
		}
	}
	for i, r := range reqs {
		select {
		case <-r.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.err != nil {
			return fmt.Errorf("embedded: append %s/%d: %w", topic, ids[i], r.err)
		}
	}
	// Every part was copied into its partition's batch: the body can serve
	// another Append (not on the early returns, where a part may still be
	// queued).
	putBody(body)
	n := make([]int64, len(reqs))
	for i, rec := range recs {
		k := which[i]
		rec.Partition, rec.Offset, rec.Timestamp = ids[k], reqs[k].base+n[k], time.UnixMicro(reqs[k].ts)
		n[k]++
	}
	return nil
}

// encode splits recs by partition and encodes each part; which[i] is the
// index in ids and reqs of recs[i]'s part. The parts' bodies are cut from
// one buffer, body (from getBody), each at its size (a first pass sizes the
// records and checks the limits).
func (l *Log) encode(t *topic, recs []*intentlog.Record) (ids []int32, reqs []*appendReq, which []int, body *[]byte, err error) {
	nparts := int32(len(t.parts))
	which = make([]int, len(recs))
	slot := map[int32]int{}
	var sizes []int
	total := int64(batchHeaderLen)
	for i, rec := range recs {
		if rec == nil {
			return nil, nil, nil, nil, fmt.Errorf("record %d is nil", i)
		}
		p := rec.Place(nparts)
		k, ok := slot[p]
		if !ok {
			k = len(reqs)
			slot[p] = k
			ids = append(ids, p)
			reqs = append(reqs, &appendReq{done: make(chan struct{})})
			sizes = append(sizes, 0)
		}
		size := int64(recordLen(0, rec))
		total += size
		if size > l.opts.MaxRecordBytes {
			return nil, nil, nil, nil, fmt.Errorf("record %d (key %q) is %d bytes encoded, max %d: %w",
				i, truncKey(rec.Key), size, l.opts.MaxRecordBytes, intentlog.ErrTooLarge)
		}
		if total > l.opts.MaxBatchBytes {
			return nil, nil, nil, nil, fmt.Errorf("records take more than the max batch of %d bytes: %w",
				l.opts.MaxBatchBytes, intentlog.ErrTooLarge)
		}
		sizes[k] += int(size)
		which[i] = k
	}
	body = getBody(int(total - batchHeaderLen))
	off := 0
	for k, r := range reqs {
		r.body = (*body)[off : off : off+sizes[k]]
		off += sizes[k]
	}
	for i, rec := range recs {
		r := reqs[which[i]]
		r.body = appendRecord(r.body, 0, rec)
		r.count++
	}
	return ids, reqs, which, body, nil
}

// bodies holds the buffers of Appends that finished, for the next ones.
var bodies sync.Pool // of *[]byte

// maxPooledBody is the largest buffer bodies keeps.
const maxPooledBody = 1 << 20

// getBody returns a buffer of at least n bytes.
func getBody(n int) *[]byte {
	if b, _ := bodies.Get().(*[]byte); b != nil && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n)
	return &b
}

// putBody gives b back for another Append, unless it is large.
func putBody(b *[]byte) {
	if cap(*b) <= maxPooledBody {
		bodies.Put(b)
	}
}

func truncKey(k []byte) []byte {
	if len(k) > 64 {
		return k[:64]
	}
	return k
}

// Bounds implements intentlog.Log.
func (l *Log) Bounds(ctx context.Context, topic string, partition int32) (start, end int64, err error) {
	p, err := l.partition("bounds", topic, partition)
	if err != nil {
		return 0, 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, 0, fmt.Errorf("embedded: bounds %s/%d: %w", topic, partition, p.closedErr())
	}
	return p.start, p.end, nil
}

// OffsetForTime implements intentlog.Log.
func (l *Log) OffsetForTime(ctx context.Context, topic string, partition int32, t time.Time) (int64, error) {
	p, err := l.partition("offset for time", topic, partition)
	if err != nil {
		return 0, err
	}
	// Round up to whole microseconds, the stored precision.
	ts := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 {
		ts++
	}
	off, err := p.offsetForTime(ts)
	if err != nil {
		return 0, fmt.Errorf("embedded: offset for time %s/%d: %w", topic, partition, err)
	}
	return off, nil
}

// stamped raises the log's newest timestamp to ts.
func (l *Log) stamped(ts int64) {
	for {
		cur := l.lastTS.Load()
		if ts <= cur || l.lastTS.CompareAndSwap(cur, ts) {
			return
		}
	}
}

// Close implements intentlog.Log: it fails queued Appends with ErrClosed,
// waits for a CreateTopic or DeleteTopic under way, stops the writers,
// wakes blocked readers and closes every file. Later calls return the
// first call's result.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.closing)
		l.mu.Unlock()
		// A CreateTopic or DeleteTopic under way (they hold createMu
		// during their file I/O) finishes first: none touches a file
		// once Close returned and let go of the directory lock. Those
		// that start later fail with ErrClosed before any file I/O.
		l.createMu.Lock()
		l.mu.RLock()
		topics := l.topics
		l.mu.RUnlock()
		l.createMu.Unlock()
		for _, t := range topics {
			for _, p := range t.parts {
				p.shutdown()
			}
		}
		l.wg.Wait()
		var errs []error
		if l.syncer != nil {
			errs = append(errs, l.syncer.close())
		}
		for _, t := range topics {
			for _, p := range t.parts {
				errs = append(errs, p.closeFiles())
			}
		}
		errs = append(errs, l.lockFile.Close())
		if err := errors.Join(errs...); err != nil {
			l.closeErr = fmt.Errorf("embedded: close %s: %w", l.dir, err)
		}
	})
	return l.closeErr
}

// lockFileName cannot collide with a topic: '#' is not allowed in names.
const lockFileName = "#lock"
