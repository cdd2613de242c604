package embedded

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// every calls fn every interval until Close.
func (l *Log) every(interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-l.closing:
			return
		case <-t.C:
			fn()
		}
	}
}

// enforceRetention applies retention to every partition once.
func (l *Log) enforceRetention() {
	l.mu.RLock()
	parts := make([]*partition, 0, len(l.topics))
	for _, t := range l.topics {
		parts = append(parts, t.parts...)
	}
	l.mu.RUnlock()
	now := l.opts.Now()
	for _, p := range parts {
		p.applyRetention(now)
	}
}

// applyRetention deletes the oldest non-active segments whose newest record
// is older than the topic's Retention, and then as long as the partition is
// larger than RetentionBytes. Readers still using a deleted segment keep
// reading it; its file is closed when the last one lets go.
func (p *partition) applyRetention(now time.Time) {
	p.mu.Lock()
	t := p.topts
	if p.closed || (t.Retention <= 0 && t.RetentionBytes <= 0) {
		p.mu.Unlock()
		return
	}
	cutoff := now.Add(-t.Retention).UnixMicro()
	var total int64
	for _, s := range p.segs {
		total += s.size
	}
	k := 0
	for ; k < len(p.segs)-1; k++ {
		s := p.segs[k]
		byTime := t.Retention > 0 && s.maxTS < cutoff
		bySize := t.RetentionBytes > 0 && total > t.RetentionBytes
		if !byTime && !bySize {
			break
		}
		total -= s.size
	}
	victims := p.segs[:k:k]
	p.segs = append([]*segment(nil), p.segs[k:]...)
	p.start = p.segs[0].base
	for _, s := range victims {
		s.dead = true
	}
	p.dead = append(p.dead, victims...)
	p.mu.Unlock()
	p.reap()
}

// reap deletes the files of the segments retention removed, oldest first:
// it stops at one still being read (files are opened lazily: deleting it
// now would fail that reader; its last reader's release reaps again) or
// one it cannot delete (the next retention run tries again). Each deletion
// is made durable before the next, so that a crash leaves the retained
// segments contiguous: a younger segment deleted while an older one is
// still on disk is a gap Open refuses.
func (p *partition) reap() {
	p.reapMu.Lock()
	defer p.reapMu.Unlock()
	p.reapLocked()
}

// reapLocked is reap, under reapMu. It deletes nothing once the partition
// is closed: its files' paths may then name another incarnation's (a topic
// deleted and created again, a Log opened again on the directory), and
// closeFiles waits for a deletion under way (reapMu).
func (p *partition) reapLocked() {
	for {
		p.mu.Lock()
		if p.closed || len(p.dead) == 0 || p.dead[0].refs > 0 {
			p.mu.Unlock()
			return
		}
		s := p.dead[0]
		p.mu.Unlock()
		if !p.removeFiles(s) {
			return
		}
		p.mu.Lock()
		p.dead = p.dead[1:]
		p.mu.Unlock()
	}
}

// removeFiles closes and deletes the files of a segment retention removed,
// durably; false if the segment's log file is still there.
func (p *partition) removeFiles(s *segment) bool {
	log := p.log.opts.Logger
	_ = p.log.files.forget(s)
	if err := p.log.fs.Remove(s.logPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Warn("embedded: retention cannot delete segment; it tries again at its next run", "file", s.logPath, "err", err)
		return false
	}
	if err := p.log.fs.Remove(s.idxPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Warn("embedded: retention cannot delete index", "file", s.idxPath, "err", err)
	}
	if err := p.log.fs.SyncDir(p.dir); err != nil {
		log.Warn("embedded: retention cannot sync the partition directory; it tries again at its next run", "dir", p.dir, "err", err)
		return false
	}
	log.Debug("embedded: retention deleted segment", "topic", p.topic, "partition", p.id,
		"file", s.logPath, "bytes", s.size, "next_offset", s.next)
	return true
}

// reconfigure gives an existing topic new options (CreateTopic of a topic
// that exists; call it with createMu held): the meta file is replaced
// atomically and durably first, so that a crash leaves the old options or
// the new ones, then the partitions take them and retention runs at once
// (a retention lowered to free space acts within the start that set it).
// On a full disk the options apply anyway, and are stored once retention
// freed space; if it freed none, they hold until Close (the next start's
// CreateTopic stores them).
func (l *Log) reconfigure(t *topic, opts intentlog.TopicOptions) error {
	if t.opts == opts && !t.unstored {
		return nil
	}
	m := metaFor(int32(len(t.parts)), opts)
	err := writeMeta(l.fs, t.dir, m, l.opts.NoSync)
	if err != nil && !vfs.IsNoSpace(err) {
		return storageErr(fmt.Errorf("store the new options: %w", err))
	}
	if t.opts.Owner != opts.Owner {
		l.opts.Logger.Info("embedded: topic claimed", "topic", t.name, "owner", opts.Owner)
		t.opts.Owner = opts.Owner
	}
	if t.opts != opts {
		l.opts.Logger.Info("embedded: topic options changed", "topic", t.name,
			"retention", t.opts.Retention.String(), "new_retention", opts.Retention.String(),
			"retention_bytes", t.opts.RetentionBytes, "new_retention_bytes", opts.RetentionBytes)
		t.opts = opts
		for _, p := range t.parts {
			p.mu.Lock()
			p.topts = opts
			p.mu.Unlock()
		}
		now := l.opts.Now()
		for _, p := range t.parts {
			p.applyRetention(now)
		}
		if err != nil { // retention may have freed space
			err = writeMeta(l.fs, t.dir, m, l.opts.NoSync)
		}
	}
	t.unstored = err != nil
	if err != nil {
		l.opts.Logger.Warn("embedded: the disk is full: the topic's new options apply but are not stored; the next start stores them",
			"topic", t.name, "err", err)
	}
	return nil
}
