package embedded

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

const (
	metaFile   = "meta"
	offsetsDir = "offsets"
	// offsetsMagic starts an offsets file:
	//	"WOF1" | count u32 | count × (partition i32, offset i64) | CRC-32C u32
	// big-endian, partitions ascending, the CRC covering everything before it.
	offsetsMagic = "WOF1"
	maxNameLen   = 249 // Kafka's topic name limit
)

// validateName accepts 1 to 249 characters of [A-Za-z0-9._-], except "."
// and "..", so that a name is always one safe path element.
func validateName(kind, name string) error {
	ok := name != "" && len(name) <= maxNameLen && name != "." && name != ".."
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
	}
	if !ok {
		return fmt.Errorf("invalid %s name %q: use 1 to %d characters of [A-Za-z0-9._-] (but not \".\" or \"..\")",
			kind, name, maxNameLen)
	}
	return nil
}

// topicMeta is the JSON content of dir/<topic>/meta.
type topicMeta struct {
	Version        int   `json:"version"`
	Partitions     int32 `json:"partitions"`
	RetentionNanos int64 `json:"retention_ns,omitempty"`
	RetentionBytes int64 `json:"retention_bytes,omitempty"`
	Compact        bool  `json:"compact,omitempty"`
	// Owner is TopicOptions.Owner; absent in the meta of a topic made
	// before it was recorded (or with none).
	Owner string `json:"owner,omitempty"`
}

func metaFor(partitions int32, o intentlog.TopicOptions) topicMeta {
	return topicMeta{Version: 1, Partitions: partitions, RetentionNanos: int64(o.Retention),
		RetentionBytes: o.RetentionBytes, Compact: o.Compact, Owner: o.Owner}
}

func (m topicMeta) options() intentlog.TopicOptions {
	return intentlog.TopicOptions{Retention: time.Duration(m.RetentionNanos), RetentionBytes: m.RetentionBytes,
		Compact: m.Compact, Owner: m.Owner}
}

func readMeta(fsys vfs.FS, topicDir string) (topicMeta, error) {
	var m topicMeta
	b, err := vfs.ReadFile(fsys, filepath.Join(topicDir, metaFile))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w: %v", filepath.Join(topicDir, metaFile), intentlog.ErrCorrupt, err)
	}
	if err := checkPartitions(m.Partitions); m.Version != 1 || err != nil {
		return m, fmt.Errorf("%s: %w: version %d, %d partitions", filepath.Join(topicDir, metaFile),
			intentlog.ErrCorrupt, m.Version, m.Partitions)
	}
	return m, nil
}

func writeMeta(fsys vfs.FS, topicDir string, m topicMeta, noSync bool) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return writeFileAtomic(fsys, filepath.Join(topicDir, metaFile), b, noSync)
}

// writeFileAtomic replaces path with data: temporary file, fsync, rename,
// fsync of the directory. The temporary name starts with '#', which no topic
// or group name can, so it never collides with a real file.
func writeFileAtomic(fsys vfs.FS, path string, data []byte, noSync bool) error {
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, "#"+filepath.Base(path)+".tmp")
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil && !noSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err != nil {
		_ = fsys.Remove(tmp)
		return err
	}
	if noSync {
		return nil
	}
	return fsys.SyncDir(dir)
}

func encodeOffsets(offs map[int32]int64) []byte {
	b := append([]byte(nil), offsetsMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(offs)))
	for _, p := range slices.Sorted(maps.Keys(offs)) {
		b = binary.BigEndian.AppendUint32(b, uint32(p))
		b = binary.BigEndian.AppendUint64(b, uint64(offs[p]))
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeOffsets(b []byte) (map[int32]int64, error) {
	if len(b) < 12 || string(b[:4]) != offsetsMagic {
		return nil, corrupt("bad offsets file header")
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, corrupt("offsets file crc mismatch")
	}
	n := int(binary.BigEndian.Uint32(body[4:]))
	if len(body) != 8+12*n {
		return nil, corrupt("offsets file length %d for %d entries", len(b), n)
	}
	offs := make(map[int32]int64, n)
	prev := int32(-1)
	for i := range n {
		e := body[8+12*i:]
		p, off := int32(binary.BigEndian.Uint32(e)), int64(binary.BigEndian.Uint64(e[4:]))
		// What the encoder never writes (a commit refuses it): the CRC
		// only says that the bytes are the ones written, not by whom.
		switch {
		case p < 0 || p >= maxPartitions:
			return nil, corrupt("offsets file entry %d: partition %d out of range [0, %d)", i, p, maxPartitions)
		case p <= prev:
			return nil, corrupt("offsets file entry %d: partition %d after %d, not ascending", i, p, prev)
		case off < 0:
			return nil, corrupt("offsets file entry %d: partition %d has negative offset %d", i, p, off)
		}
		offs[p], prev = off, p
	}
	return offs, nil
}

// offsetsRepairHint is the fix that errors about a damaged offsets file
// name (Repair, repairOffsets).
const offsetsRepairHint = "stop wail and run `wail log repair DATA_DIR` (it keeps the file's bytes in a quarantine " +
	"file and starts the group again at each partition's first retained offset: it reads again what it had " +
	"read, and skips nothing), or restore the file from a backup"

// loadGroup returns the cached offsets of group, reading its file the first
// time (the only file I/O under t.offMu). Call with t.offMu held; do not
// modify the result.
func (t *topic) loadGroup(fsys vfs.FS, group string) (map[int32]int64, error) {
	if offs, ok := t.groups[group]; ok {
		return offs, nil
	}
	path := filepath.Join(t.dir, offsetsDir, group)
	b, err := vfs.ReadFile(fsys, path)
	var offs map[int32]int64
	switch {
	case errors.Is(err, os.ErrNotExist):
		offs = map[int32]int64{}
	case err != nil:
		return nil, storageErr(err)
	default:
		if offs, err = decodeOffsets(b); err != nil {
			return nil, fmt.Errorf("%s: %w; %s", path, err, offsetsRepairHint)
		}
	}
	t.groups[group] = offs
	return offs, nil
}

// Commit implements intentlog.Log. Offsets merge per partition with what the
// group committed before.
func (l *Log) Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error {
	if err := l.commit(ctx, group, topic, offsets); err != nil {
		return fmt.Errorf("embedded: commit %s/%s: %w", group, topic, err)
	}
	return nil
}

// Offset commits.
//
// A group's offsets live in one file, replaced atomically (writeFileAtomic:
// write, fsync, rename, fsync of the directory). Concurrent commits of one
// group (the resolver commits each partition from its own loop) are merged:
// the first becomes the writer; the commits arriving while it writes queue
// their offsets and wait, and its next write carries all of them at once
// and answers them all with its result. No lock that Committed or another
// group takes is held during the file I/O: topic.offMu guards only the
// maps, and the writer holds topic.offIO shared, which DeleteTopic takes
// exclusively before it moves the directory away.
type groupCommit struct {
	pending map[int32]int64 // offsets queued for the next write
	waiters []chan error    // their commits, answered after that write
	writing bool            // a commit is writing (or about to)
}

func (l *Log) commit(ctx context.Context, group, topic string, offsets map[int32]int64) error {
	if err := validateName("group", group); err != nil {
		return err
	}
	t, err := l.lookup(topic)
	if err != nil {
		return err
	}
	for p, off := range offsets {
		if p < 0 || int(p) >= len(t.parts) || off < 0 {
			return fmt.Errorf("partition %d offset %d: out of range for %d partitions", p, off, len(t.parts))
		}
	}
	// Beyond the end, the group would skip the records appended later
	// at the offsets below it: no caller that commits what it read
	// passes one, since a partition's end only grows while the log is
	// open (Open lowers offsets a lost tail left beyond it: clamp.go),
	// but an offset of another topic of the name, deleted since, may.
	// Kafka takes any offset; here the end is at hand.
	for _, p := range slices.Sorted(maps.Keys(offsets)) {
		if end := t.parts[p].endOffset(); offsets[p] > end {
			return fmt.Errorf("partition %d offset %d: beyond the partition's end %d (the next offset to be written): "+
				"a group committed there would skip the records appended below it; nothing was committed: %w",
				p, offsets[p], end, intentlog.ErrOffsetOutOfRange)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	t.offMu.Lock()
	if t.deleted {
		t.offMu.Unlock()
		return errDeleted
	}
	g := t.commits[group]
	if g == nil {
		g = &groupCommit{}
		t.commits[group] = g
	}
	if g.pending == nil {
		g.pending = map[int32]int64{}
	}
	maps.Copy(g.pending, offsets)
	g.waiters = append(g.waiters, done)
	lead := !g.writing
	g.writing = true
	t.offMu.Unlock()
	if lead {
		l.writeCommits(t, group, g)
	}
	return <-done
}

// writeCommits writes g's queued offsets, one merged write at a time, until
// none is queued, answering each write's commits.
func (l *Log) writeCommits(t *topic, group string, g *groupCommit) {
	for {
		t.offMu.Lock()
		if len(g.waiters) == 0 {
			g.writing = false
			t.offMu.Unlock()
			return
		}
		offsets, waiters := g.pending, g.waiters
		g.pending, g.waiters = nil, nil
		var next map[int32]int64
		cur, err := t.loadGroup(l.fs, group)
		loadErr := err
		if err == nil && t.deleted {
			err = errDeleted
		}
		if err == nil {
			next = maps.Clone(cur)
			maps.Copy(next, offsets)
		}
		t.offMu.Unlock()
		if loadErr != nil {
			l.groupRead(t, group, loadErr)
		}
		if err == nil {
			err = l.writeOffsets(t, group, next)
		}
		if err == nil {
			// The file reads as next now. Not under offIO, which is below
			// Log.mu (reportHealth) in the lock order.
			l.groupRead(t, group, nil)
		}
		for _, w := range waiters {
			w <- err
		}
	}
}

// writeOffsets replaces group's file with offs and, once durable, its
// cached offsets.
func (l *Log) writeOffsets(t *topic, group string, offs map[int32]int64) error {
	t.offIO.RLock()
	defer t.offIO.RUnlock()
	if l.testHookOffsetsWrite != nil {
		l.testHookOffsetsWrite(group)
	}
	t.offMu.Lock()
	deleted := t.deleted
	t.offMu.Unlock()
	if deleted {
		return errDeleted
	}
	if err := writeFileAtomic(l.fs, filepath.Join(t.dir, offsetsDir, group), encodeOffsets(offs), l.opts.NoSync); err != nil {
		return storageErr(err)
	}
	t.offMu.Lock()
	t.groups[group] = offs
	t.offMu.Unlock()
	return nil
}

// Committed implements intentlog.Log.
func (l *Log) Committed(ctx context.Context, group, topic string) (map[int32]int64, error) {
	if err := validateName("group", group); err != nil {
		return nil, fmt.Errorf("embedded: committed %s/%s: %w", group, topic, err)
	}
	t, err := l.lookup(topic)
	if err != nil {
		return nil, fmt.Errorf("embedded: committed %s/%s: %w", group, topic, err)
	}
	if l.testHookCommitted != nil {
		l.testHookCommitted(topic)
	}
	t.offMu.Lock()
	if t.deleted {
		t.offMu.Unlock()
		// Found before a deletion: its offsets (cached, or read from a
		// topic of the name created since) are not the topic's.
		return nil, fmt.Errorf("embedded: committed %s/%s: %w", group, topic, errDeleted)
	}
	cur, err := t.loadGroup(l.fs, group)
	cur = maps.Clone(cur)
	t.offMu.Unlock()
	l.groupRead(t, group, err)
	if err != nil {
		return nil, fmt.Errorf("embedded: committed %s/%s: %w", group, topic, err)
	}
	return cur, nil
}

// endOffset returns the partition's end: the next offset to be written,
// everything below it durable.
func (p *partition) endOffset() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.end
}
