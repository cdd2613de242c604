package embedded

import (
	"errors"
	"io/fs"
	"time"
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
	t := p.topts
	if t.Retention <= 0 && t.RetentionBytes <= 0 {
		return
	}
	cutoff := now.Add(-t.Retention).UnixMicro()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
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
	var gone []*segment
	for _, s := range victims {
		s.dead = true
		if s.refs == 0 {
			gone = append(gone, s)
		}
	}
	p.mu.Unlock()
	// A segment still being read is deleted by its last reader's release
	// (files are opened lazily: deleting it now would fail that reader).
	for _, s := range gone {
		p.removeFiles(s)
	}
}

// removeFiles closes and deletes the files of a segment retention removed.
func (p *partition) removeFiles(s *segment) {
	log := p.log.opts.Logger
	_ = p.log.files.forget(s)
	if err := p.log.fs.Remove(s.logPath); err != nil {
		log.Warn("embedded: retention cannot delete segment", "file", s.logPath, "err", err)
		return
	}
	if err := p.log.fs.Remove(s.idxPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Warn("embedded: retention cannot delete index", "file", s.idxPath, "err", err)
	}
	log.Debug("embedded: retention deleted segment", "topic", p.topic, "partition", p.id,
		"file", s.logPath, "bytes", s.size, "next_offset", s.next)
}
