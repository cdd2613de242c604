package embedded

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// Storage failures (see the package comment, "Storage errors"):
//
//   - a full disk (ENOSPC, EDQUOT) on a write, a segment roll or a commit of
//     offsets: the failed batch is cut off again and the partition goes on
//     taking appends, each failing with ErrNoSpace until one succeeds. A
//     probe writes a small file every SpaceProbeInterval so that Health
//     clears once space returns even when no one appends.
//   - any failed fsync of a segment, another I/O error on a write or a
//     roll, or an active segment that cannot be opened again (but for too
//     many open files, which fails only that append): the partition is broken and refuses appends with ErrStorage
//     until the log is reopened, since after a failed fsync the kernel may
//     have dropped the dirty pages and forgotten the error (PostgreSQL and
//     Kafka treat it as fatal too).

// ErrReadFailing is Health's condition while a partition's reads fail
// with an I/O error: appends go on, but the partition's readers (the
// resolver, subscriptions) are stuck. It clears once a read of the
// partition, or the probe's, succeeds.
var ErrReadFailing = errors.New("reads of the log fail")

// ErrReadCorrupt is Health's condition while a read of a partition found
// damaged bytes (intentlog.ErrCorrupt: a CRC mismatch, a bad magic byte in
// a sealed segment): appends go on, but the partition's readers stop at
// the damage until `wail log repair` removes it. It wraps the read's
// error, which names the segment file and the position. It clears once
// that position reads fine again (readhealth.go).
var ErrReadCorrupt = errors.New("corrupt data in the log")

// storageErr wraps an error of a file operation with ErrNoSpace or
// ErrStorage.
func storageErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, intentlog.ErrStorage), errors.Is(err, intentlog.ErrCorrupt),
		errors.Is(err, intentlog.ErrClosed):
		return err
	case vfs.IsNoSpace(err):
		return fmt.Errorf("%w: %w", intentlog.ErrNoSpace, err)
	default:
		return fmt.Errorf("%w: %w", intentlog.ErrStorage, err)
	}
}

// fileErr wraps an error that failed Open or DeleteTopic with ErrStorage
// (or ErrNoSpace) when a file operation caused it (an *fs.PathError or
// *os.LinkError, but for running out of descriptors), so that a caller
// tells a failing disk from damage (ErrCorrupt, passed through), a held
// lock or a bad argument.
func fileErr(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	if (errors.As(err, &pe) || errors.As(err, &le)) && !outOfFiles(err) {
		return storageErr(err)
	}
	return err
}

// outOfFiles reports whether err is the process's or the system's open
// files running out (EMFILE, ENFILE): nothing the disk did.
func outOfFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// setBroken makes the partition refuse appends until the log is reopened.
func (p *partition) setBroken(err error) error {
	p.qmu.Lock()
	if p.broken == nil {
		p.broken = err
	}
	p.qmu.Unlock()
	p.log.opts.Logger.Error("embedded: partition refuses appends until wail restarts; check the disk (dmesg, SMART) first",
		"topic", p.topic, "partition", p.id, "err", err)
	p.log.reportHealth()
	return err
}

// setNoSpace records that a write failed on a full disk.
func (p *partition) setNoSpace(err error) error {
	p.qmu.Lock()
	first := p.noSpace == nil
	p.noSpace = err
	p.noSpaceN++
	p.qmu.Unlock()
	if first {
		p.log.opts.Logger.Error("embedded: disk full: appends fail until space is freed",
			"topic", p.topic, "partition", p.id, "dir", p.dir, "err", err)
		p.log.reportHealth()
	}
	return err
}

// clearNoSpace records that a write succeeded.
func (p *partition) clearNoSpace() {
	p.qmu.Lock()
	was := p.noSpace != nil
	p.noSpace = nil
	p.qmu.Unlock()
	if was {
		p.spaceReturned()
	}
}

// clearProbed records that a probe found space, which it started looking
// for after the partition's n-th failure on a full disk: a later failure
// (a batch larger than the probe, the disk filling up again) stands.
func (p *partition) clearProbed(n uint64) {
	p.qmu.Lock()
	ok := p.noSpace != nil && p.noSpaceN == n
	if ok {
		p.noSpace = nil
	}
	p.qmu.Unlock()
	if ok {
		p.spaceReturned()
	}
}

func (p *partition) spaceReturned() {
	p.log.opts.Logger.Info("embedded: disk has space again; appends resume", "topic", p.topic, "partition", p.id)
	p.log.reportHealth()
}

// condition returns the partition's broken, no-space, failed-read and
// corrupt-read errors.
func (p *partition) condition() (broken, noSpace, readFail, corrupt error) {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	return p.broken, p.noSpace, p.readFaults[faultIO].err, p.readFaults[faultCorrupt].err
}

// fullCount reports whether the partition is out of space, and the count
// of its failures on a full disk so far.
func (p *partition) fullCount() (n uint64, full bool) {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	return p.noSpaceN, p.noSpace != nil
}

// Health reports whether the log takes appends and serves reads: nil, or
// an error wrapping intentlog.ErrNoSpace (the disk is full; it clears by
// itself once space returns), ErrReadCorrupt (a read of a partition found
// damaged bytes; appends go on, and it clears once the position reads
// fine again: after `wail log repair`, or a file restored), ErrReadFailing
// (reads of a partition fail with an I/O error; appends go on, and it
// clears by itself once the failed position reads again: readhealth.go),
// or intentlog.ErrStorage alone (an fsync or I/O error broke a partition;
// it refuses appends until the log is reopened): the worst of them, with
// the others that hold named after it ("; also ..."), not wrapped.
// ErrReadFailing wraps the read's error, which wraps ErrStorage: test for
// it before ErrStorage; ErrReadCorrupt wraps intentlog.ErrCorrupt. The
// read conditions cover a group's offsets file too (offsetshealth.go).
// The message names the first failing partition (or topic and group) and
// how many fail.
func (l *Log) Health() error {
	l.mu.RLock()
	var broken, noSpace, readFail, corrupt tally
	for _, t := range l.topics {
		for _, p := range t.parts {
			b, s, r, c := p.condition()
			broken.add(b, "%s/%d", t.name, p.id)
			noSpace.add(s, "%s/%d", t.name, p.id)
			readFail.add(r, "%s/%d", t.name, p.id)
			corrupt.add(c, "%s/%d", t.name, p.id)
		}
		groups, faults := t.groupConditions()
		for _, g := range groups {
			if errors.Is(faults[g], ErrReadCorrupt) {
				corrupt.add(faults[g], "%s group %s", t.name, g)
			} else {
				readFail.add(faults[g], "%s group %s", t.name, g)
			}
		}
	}
	l.mu.RUnlock()
	var worst error
	var also []string
	for _, c := range []struct {
		t    tally
		what string
	}{
		{broken, "partition(s) broken by a storage error"},
		{noSpace, "partition(s) cannot append"},
		{corrupt, "partition(s) or group offsets hold damaged data"},
		{readFail, "partition(s) or group offsets cannot be read"},
	} {
		switch {
		case c.t.first == nil:
		case worst == nil:
			worst = fmt.Errorf("%d %s, first %w", c.t.n, c.what, c.t.first)
		default:
			also = append(also, fmt.Sprintf("%d %s, first %v", c.t.n, c.what, c.t.first))
		}
	}
	if len(also) > 0 {
		// Named, not wrapped: the worst condition alone decides what
		// the error is (errors.Is), and an operator who cures it is not
		// surprised by the next.
		return fmt.Errorf("%w; also %s", worst, strings.Join(also, "; also "))
	}
	return worst
}

// tally counts the partitions (or groups) in one condition and keeps the
// first one's error, prefixed with where it is.
type tally struct {
	n     int
	first error
}

// add counts err unless it is nil; the first is formatted where+": "+err.
func (t *tally) add(err error, where string, args ...any) {
	if err == nil {
		return
	}
	t.n++
	if t.first == nil {
		t.first = fmt.Errorf(where+": %w", append(args, err)...)
	}
}

// reportHealth calls Options.OnHealth when the health changed.
func (l *Log) reportHealth() {
	if l.opts.OnHealth == nil {
		return
	}
	l.healthMu.Lock()
	defer l.healthMu.Unlock()
	h := l.Health()
	msg := ""
	if h != nil {
		msg = h.Error()
	}
	if msg == l.lastHealth {
		return
	}
	l.lastHealth = msg
	l.opts.OnHealth(h)
}

// probeName is the file the space probe writes; '#' keeps it apart from
// topics.
const probeName = "#space-probe.tmp"

// probeWhileFull, called every SpaceProbeInterval, probes for free space
// while a partition is out of space, and clears the condition once a probe
// write of probeBytes succeeds (the next append then tries for real). It
// clears only the failures seen before the probe started: a partition
// that failed again meanwhile (a batch larger than the probe, a disk
// filling up again) stays full until the next probe.
func (l *Log) probeWhileFull() {
	type seen struct {
		p *partition
		n uint64
	}
	var full []seen
	l.mu.RLock()
	for _, t := range l.topics {
		for _, p := range t.parts {
			if n, isFull := p.fullCount(); isFull {
				full = append(full, seen{p, n})
			}
		}
	}
	l.mu.RUnlock()
	if len(full) == 0 || l.probeSpace() != nil {
		return
	}
	for _, f := range full {
		f.p.clearProbed(f.n)
	}
}

// probeBytes is the size of the space probe: a batch of that size would fit.
const probeBytes = 1 << 20

// probeSpace writes and fsyncs a probe file, then removes it.
func (l *Log) probeSpace() error {
	path := filepath.Join(l.dir, probeName)
	f, err := l.fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(make([]byte, probeBytes), 0)
	if err == nil {
		err = f.Sync()
	}
	err = errors.Join(err, f.Close(), l.fs.Remove(path))
	return err
}
