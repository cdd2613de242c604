package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// corruptSealed opens a log of 20 batches of 3 records (5 segments) whose
// first sealed segment has its first batch's CRC damaged at rest: found by
// readers, not at Open. It returns the log, the damaged file and position,
// and the health calls.
func corruptSealed(t *testing.T, probe time.Duration) (*Log, string, int64, *healthLog) {
	t.Helper()
	return corruptSealedFS(t, probe, nil)
}

// corruptSealedFS is corruptSealed with the log opened again on fsys (nil:
// the operating system's).
func corruptSealedFS(t *testing.T, probe time.Duration, fsys vfs.FS) (*Log, string, int64, *healthLog) {
	t.Helper()
	const batches, per, perSeg = 20, 3, 4
	const batchBytes = batchHeaderLen + per*23
	dir := t.TempDir()
	opts := Options{SegmentBytes: perSeg * batchBytes, IndexIntervalBytes: 3 * batchBytes}
	l := openLog(t, dir, opts)
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	for i := range batches {
		appendBatch(t, l, fmt.Sprintf("b%02d", i), per)
	}
	noErr(t, l.Close())
	path := segmentPath(filepath.Join(dir, testTopic, "0"), 0, logExt)
	pos := batchPositions(t, path)[0]
	flipByte(40)(t, path, pos)
	hl := &healthLog{}
	opts.OnHealth, opts.SpaceProbeInterval, opts.FS = hl.report, probe, fsys
	l = openLog(t, dir, opts)
	t.Cleanup(func() { _ = l.Close() })
	return l, path, pos, hl
}

// TestCorruptReadInHealth: a read that finds damaged bytes in a sealed
// segment (ErrCorrupt) shows in Health (and OnHealth) as ErrReadCorrupt
// naming the partition, the segment file, the position and `wail log
// repair`, without breaking the partition or counting as a failing disk;
// it clears once the data there reads fine again.
func TestCorruptReadInHealth(t *testing.T) {
	for _, tc := range readCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, path, pos, hl := corruptSealed(t, time.Hour)
			if h := l.Health(); h != nil {
				t.Fatalf("Health before a read found the damage: %v", h)
			}
			if err := tc.read(l); !errors.Is(err, intentlog.ErrCorrupt) {
				t.Fatalf("read of damaged bytes: %v, want ErrCorrupt", err)
			}
			h := l.Health()
			if !errors.Is(h, ErrReadCorrupt) || !errors.Is(h, intentlog.ErrCorrupt) || errors.Is(h, intentlog.ErrStorage) ||
				errors.Is(h, ErrReadFailing) {
				t.Fatalf("Health after a read found damage: %v; want ErrReadCorrupt wrapping ErrCorrupt only", h)
			}
			for _, want := range []string{testTopic + "/0", path, fmt.Sprintf("position %d", pos), "wail log repair DATA_DIR"} {
				if !strings.Contains(h.Error(), want) {
					t.Fatalf("Health %q does not name %q", h, want)
				}
			}
			if n, last := hl.last(); n != 1 || !errors.Is(last, ErrReadCorrupt) {
				t.Fatalf("OnHealth: %d calls, last %v; want one with ErrReadCorrupt", n, last)
			}
			if _, err := tryAppend(l, "x"); err != nil {
				t.Fatalf("append while a sealed segment is damaged: %v", err)
			}
			_ = tc.read(l)
			if n, _ := hl.last(); n != 1 {
				t.Fatalf("OnHealth called %d times after a second read of the damage, want once", n)
			}
			flipByte(40)(t, path, pos) // the bytes read fine again
			if err := tc.read(l); err != nil {
				t.Fatalf("read once the bytes are sound: %v", err)
			}
			if h := l.Health(); h != nil {
				t.Fatalf("Health after the data read fine again: %v", h)
			}
			if n, last := hl.last(); n != 2 || last != nil {
				t.Fatalf("OnHealth: %d calls, last %v; want a second one with nil", n, last)
			}
		})
	}
}

// TestCorruptReadProbe: the damage found by a reader that does not come
// back (a subscriber gone, a resolver waiting out its backoff) is decoded
// again by the probe: it stays while the batch is damaged and clears once
// it is sound (a segment restored from a backup, a flaky controller).
func TestCorruptReadProbe(t *testing.T) {
	t.Parallel()
	l, path, pos, _ := corruptSealed(t, 5*time.Millisecond)
	if err := readCases[0].read(l); !errors.Is(err, intentlog.ErrCorrupt) {
		t.Fatalf("read of damaged bytes: %v, want ErrCorrupt", err)
	}
	time.Sleep(50 * time.Millisecond) // probes decode the damaged batch again
	if h := l.Health(); !errors.Is(h, ErrReadCorrupt) {
		t.Fatalf("Health while the batch is still damaged: %v, want ErrReadCorrupt", h)
	}
	flipByte(40)(t, path, pos)
	deadline := time.Now().Add(10 * time.Second)
	for l.Health() != nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if h := l.Health(); h != nil {
		t.Fatalf("Health once the batch is sound, with no read but the probe's: %v", h)
	}
}

// TestTornAppendIsNotCorruptRead: an append cut short on a full disk
// leaves a torn batch at the active segment's end until it is cut off
// again; readers tailing the partition meanwhile never see it, so no read
// reports damage (ErrReadCorrupt) for it.
func TestTornAppendIsNotCorruptRead(t *testing.T) {
	t.Parallel()
	efs, hl := vfs.NewErrorFS(nil), &healthLog{}
	l := openLog(t, t.TempDir(), Options{FS: efs, OnHealth: hl.report, SpaceProbeInterval: time.Hour})
	defer l.Close()
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	appendBatch(t, l, "a", 5)
	r, err := l.NewReader(testTopic, 0, 0)
	noErr(t, err)
	defer r.Close()
	efs.Inject(vfs.Fault{Ops: vfs.OpWrite, Path: "*.log", Err: syscall.ENOSPC, Partial: true, Times: 1})
	if _, err := tryAppend(l, "torn"); !errors.Is(err, intentlog.ErrNoSpace) {
		t.Fatalf("append on a full disk: %v, want ErrNoSpace", err)
	}
	appendBatch(t, l, "b", 5)
	var got int
	for got < 10 {
		recs, err := r.Next(context.Background())
		if err != nil {
			t.Fatalf("read after a torn append: %v", err)
		}
		got += len(recs)
	}
	hl.mu.Lock()
	defer hl.mu.Unlock()
	for _, h := range hl.calls {
		if errors.Is(h, ErrReadCorrupt) || errors.Is(h, intentlog.ErrCorrupt) {
			t.Fatalf("a torn append reported as damage: %v", h)
		}
	}
	if h := l.Health(); h != nil {
		t.Fatalf("Health after the torn append was cut off and appends went on: %v", h)
	}
}

// TestCorruptReindexInHealth: a read finds a stale index entry, and the
// walk that rebuilds the index stops at damage before it: the read fails
// with ErrCorrupt, and Health names the damage (ErrReadCorrupt at the
// damaged batch), as a read that met it would.
func TestCorruptReindexInHealth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := Options{SegmentBytes: 4 << 10, IndexIntervalBytes: 128, RetentionCheckInterval: -1}
	l := openLog(t, dir, opts)
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	for i := range 120 {
		appendBatch(t, l, fmt.Sprintf("b%03d", i), 2)
	}
	noErr(t, l.Close())
	idx := segmentFiles(t, dir, 0, idxExt)
	if len(idx) == 0 {
		t.Fatal("no sealed segment")
	}
	b, err := os.ReadFile(idx[0])
	noErr(t, err)
	entries, err := parseIndex(b, 1<<30)
	noErr(t, err)
	if len(entries) < 4 {
		t.Fatalf("%d index entries, want 4 or more", len(entries))
	}
	from := int64(entries[2].rel)
	entries[2].pos++
	noErr(t, os.WriteFile(idx[0], encodeIndex(entries), 0o644))
	path := segmentPath(filepath.Join(dir, testTopic, "0"), 0, logExt)
	damaged := int64(entries[1].pos)
	flipByte(20)(t, path, damaged)
	l = openLog(t, dir, opts)
	defer l.Close()
	r, err := l.NewReader(testTopic, 0, from)
	noErr(t, err)
	defer r.Close()
	if _, err := r.Next(context.Background()); !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("%s at position %d", path, damaged)) {
		t.Fatalf("read from a stale entry after damage: %v, want ErrCorrupt at %s position %d", err, path, damaged)
	}
	h := l.Health()
	if !errors.Is(h, ErrReadCorrupt) || !strings.Contains(h.Error(), fmt.Sprintf("%s at position %d", path, damaged)) {
		t.Fatalf("Health after the reindex met damage: %v; want ErrReadCorrupt at %s position %d", h, path, damaged)
	}
}

// TestHealthNamesEveryCondition: with the disk full and damaged data found
// by a read at once, Health is the worst (ErrNoSpace: it decides the
// state) and names the damage after it, not wrapped: an operator who
// frees space is told of the repair still to do before it shows alone.
func TestHealthNamesEveryCondition(t *testing.T) {
	t.Parallel()
	efs := vfs.NewErrorFS(nil)
	l, path, pos, _ := corruptSealedFS(t, time.Hour, efs)
	if err := readCases[0].read(l); !errors.Is(err, intentlog.ErrCorrupt) {
		t.Fatalf("read of damaged bytes: %v, want ErrCorrupt", err)
	}
	efs.Inject(vfs.Fault{Ops: vfs.OpWrite, Path: "*.log", Err: syscall.ENOSPC})
	if _, err := tryAppend(l, "x"); !errors.Is(err, intentlog.ErrNoSpace) {
		t.Fatalf("append on a full disk: %v, want ErrNoSpace", err)
	}
	h := l.Health()
	if !errors.Is(h, intentlog.ErrNoSpace) || errors.Is(h, ErrReadCorrupt) {
		t.Fatalf("Health: %v; want ErrNoSpace, the damage not wrapped", h)
	}
	for _, want := range []string{"1 partition(s) cannot append", "; also 1 partition(s) or group offsets hold damaged data", fmt.Sprintf("%s at position %d", path, pos)} {
		if !strings.Contains(h.Error(), want) {
			t.Fatalf("Health %q does not name %q", h, want)
		}
	}
}

// TestSkippedBatchDamage: a read that finds the offset it wants missing
// shows in Health and stays there, while the damage is elsewhere than
// where the read stopped. A header whose base offset reads lower (bit rot
// after Open, which checks the sealed segments) is skipped by its header
// alone (a reader past damage it does not need is not stopped by it), so
// the read fails at the next batch ("batch starts at offset 21, expected
// 18") or, for a segment's last batch, at the segment's end ("offset 21
// missing"), as for a sound batch that holds earlier offsets (a segment
// file mixed up with another). The probe found nothing wrong at either
// place and cleared the condition, and every reader's retry raised it
// again: the health flapped.
func TestSkippedBatchDamage(t *testing.T) {
	const batches, per, perSeg = 20, 3, 4
	const batchBytes = batchHeaderLen + per*23
	for _, tc := range []struct {
		name   string
		batch  int                 // of segment 1 (offsets 12, 15, 18, 21)
		damage func(b []byte)      // of the batch's bytes
		from   int64               // the reader's start
		want   string              // in the second Next's error
		at     func([]int64) int64 // the position Health names
	}{
		{"a skipped batch's base offset", 2, func(b []byte) { b[16] ^= 0x10 }, 12, "batch starts at offset 21, expected 18",
			func(pos []int64) int64 { return pos[3] }},
		{"a segment's last batch's base offset", 3, func(b []byte) { b[16] ^= 0x10 }, 18, "offset 21 missing",
			func([]int64) int64 { return -1 }},
		{"a sound batch of earlier offsets at a segment's end", 3, func(b []byte) {
			b[16] ^= 0x10
			binary.BigEndian.PutUint32(b[5:], crc32.Checksum(b[9:], castagnoli))
		}, 18, "offset 21 missing", func([]int64) int64 { return -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			hl := &healthLog{}
			opts := Options{SegmentBytes: perSeg * batchBytes, IndexIntervalBytes: 3 * batchBytes, OnHealth: hl.report,
				SpaceProbeInterval: 5 * time.Millisecond}
			l := openLog(t, dir, opts)
			defer l.Close()
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			for i := range batches {
				appendBatch(t, l, fmt.Sprintf("b%02d", i), per)
			}
			path := segmentPath(filepath.Join(dir, testTopic, "0"), 12, logExt)
			pos := batchPositions(t, path)
			b, err := os.ReadFile(path)
			noErr(t, err)
			end := int64(len(b))
			if tc.batch+1 < len(pos) {
				end = pos[tc.batch+1]
			}
			tc.damage(b[pos[tc.batch]:end])
			patch(t, path, pos[tc.batch], b[pos[tc.batch]:end])
			r, err := l.NewReader(testTopic, 0, tc.from)
			noErr(t, err)
			defer r.Close()
			var read int
			for range 10 { // up to the damage
				var recs []intentlog.Record
				if recs, err = r.Next(context.Background()); err != nil {
					break
				}
				read += len(recs)
			}
			if !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("read into the damage: %d records, %v; want ErrCorrupt, %q", read, err, tc.want)
			}
			time.Sleep(100 * time.Millisecond) // probes
			h := l.Health()
			if !errors.Is(h, ErrReadCorrupt) {
				t.Fatalf("Health after probes: %v, want ErrReadCorrupt still", h)
			}
			if at := tc.at(pos); at >= 0 && !strings.Contains(h.Error(), fmt.Sprintf("%s at position %d", path, at)) {
				t.Fatalf("Health %v does not name the damaged batch at %d", h, at)
			}
			if n, _ := hl.last(); n != 1 {
				t.Fatalf("OnHealth called %d times, want once", n)
			}
		})
	}
}

// TestReadUpToDamageKeepsIt: a read that stops just before a damaged batch
// another read failed at (it returns the records before it; its next call
// fails there) has not read the damage: Health keeps ErrReadCorrupt at
// that batch. Only a read that gets through the batch clears it.
func TestReadUpToDamageKeepsIt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLog(t, dir, Options{IndexIntervalBytes: 64, SpaceProbeInterval: time.Hour})
	defer l.Close()
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	_, index, path := activeBatches(t, l, dir, 6)
	if len(index) < 3 || index[2].rel != 4 {
		t.Fatalf("index %v; want an entry for every batch of 2 records", index)
	}
	e := index[2]
	flipByte(batchHeaderLen+2)(t, path, int64(e.pos)) // a record's byte: the CRC fails
	at, err := l.NewReader(testTopic, 0, int64(e.rel))
	noErr(t, err)
	defer at.Close()
	if _, err := at.Next(context.Background()); !errors.Is(err, intentlog.ErrCorrupt) {
		t.Fatalf("read of the damaged batch: %v, want ErrCorrupt", err)
	}
	before, err := l.NewReader(testTopic, 0, 0)
	noErr(t, err)
	defer before.Close()
	recs, err := before.Next(context.Background())
	if err != nil || len(recs) != int(e.rel) {
		t.Fatalf("read from 0: %d records, %v; want the %d before the damaged batch", len(recs), err, e.rel)
	}
	if h := l.Health(); !errors.Is(h, ErrReadCorrupt) || !strings.Contains(h.Error(), fmt.Sprintf("%s at position %d", path, e.pos)) {
		t.Fatalf("Health after a read stopped just before the damage: %v; want ErrReadCorrupt at %s position %d", h, path, e.pos)
	}
}

// TestReadFaultsOfBothKinds: a partition with a failed read of each kind
// (an I/O error at one batch, damage at another) clears each where a read
// gets through it, in either order: clearing the first leaves the other
// to be cleared by its own read.
func TestReadFaultsOfBothKinds(t *testing.T) {
	for _, ioFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("I/O error cleared first: %v", ioFirst), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			efs := vfs.NewErrorFS(nil)
			l := openLog(t, dir, Options{FS: efs, IndexIntervalBytes: 64, SpaceProbeInterval: time.Hour})
			defer l.Close()
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			_, index, path := activeBatches(t, l, dir, 6)
			if len(index) < 5 || index[1].rel != 2 {
				t.Fatalf("index %v; want an entry for every batch of 2 records", index)
			}
			ioAt, badAt := index[1], index[3]
			read := func(e indexEntry) error {
				r, err := l.NewReader(testTopic, 0, int64(e.rel))
				noErr(t, err)
				defer r.Close()
				_, err = r.Next(context.Background())
				return err
			}
			efs.Inject(vfs.Fault{Ops: vfs.OpRead, Path: "*.log", Bytes: [2]int64{int64(ioAt.pos), int64(ioAt.pos) + 1}})
			if err := read(ioAt); !errors.Is(err, intentlog.ErrStorage) {
				t.Fatalf("read of a batch that fails with EIO: %v, want ErrStorage", err)
			}
			flipByte(batchHeaderLen+2)(t, path, int64(badAt.pos))
			if err := read(badAt); !errors.Is(err, intentlog.ErrCorrupt) {
				t.Fatalf("read of a damaged batch: %v, want ErrCorrupt", err)
			}
			// Health wraps the worst condition and names the others.
			names := func(h error, cond error) bool { return h != nil && strings.Contains(h.Error(), cond.Error()) }
			if h := l.Health(); !names(h, ErrReadFailing) || !names(h, ErrReadCorrupt) {
				t.Fatalf("Health with both: %v; want ErrReadFailing and ErrReadCorrupt", h)
			}
			clearIO := func() {
				efs.Clear()
				noErr(t, read(ioAt)) // the records up to the damaged batch: through the I/O fault
				if h := l.Health(); names(h, ErrReadFailing) {
					t.Fatalf("Health after a read got through the I/O fault: %v", h)
				}
			}
			clearBad := func() {
				flipByte(batchHeaderLen+2)(t, path, int64(badAt.pos))
				noErr(t, read(badAt))
				if h := l.Health(); names(h, ErrReadCorrupt) {
					t.Fatalf("Health after a read got through the batch once sound: %v", h)
				}
			}
			if ioFirst {
				clearIO()
				clearBad()
			} else {
				clearBad()
				clearIO()
			}
			if h := l.Health(); h != nil {
				t.Fatalf("Health after reads got through both faults: %v", h)
			}
		})
	}
}

// TestProbeAfterRetention: the probe reads again where a read found damage,
// holding the segment while it does (and letting go after); once
// retention removed the segment, the probe clears the failure: the
// damage went with it.
func TestProbeAfterRetention(t *testing.T) {
	t.Parallel()
	l, _, _, _ := corruptSealed(t, time.Hour)
	if err := readCases[0].read(l); !errors.Is(err, intentlog.ErrCorrupt) {
		t.Fatalf("read of damaged bytes: %v, want ErrCorrupt", err)
	}
	p := l.topics[testTopic].parts[0]
	p.mu.Lock()
	s := p.segs[0]
	p.mu.Unlock()
	l.probeReads()
	p.mu.Lock()
	refs := s.refs
	p.mu.Unlock()
	if h := l.Health(); !errors.Is(h, ErrReadCorrupt) || refs != 0 {
		t.Fatalf("after a probe of the still damaged batch: Health %v, segment refs %d; want ErrReadCorrupt, 0 refs", h, refs)
	}
	p.mu.Lock()
	p.topts.RetentionBytes = 1 // every sealed segment goes
	p.mu.Unlock()
	p.applyRetention(time.Now())
	p.mu.Lock()
	dead := s.dead
	p.mu.Unlock()
	if !dead {
		t.Fatal("retention kept the damaged segment")
	}
	l.probeReads()
	if h := l.Health(); h != nil {
		t.Fatalf("Health after retention removed the damaged segment and a probe ran: %v; want nil", h)
	}
}
