package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/wail-cdc/wail/internal/intentlog"
)

const (
	// A Next call returns at most about this much (whole batches are
	// decoded; records beyond the limit wait for the following call).
	maxReadRecords = 1024
	maxReadBytes   = 1 << 20
	// readerChunk is a reader's ReadAt size; records alias these buffers.
	readerChunk = 256 << 10
)

// reader reads one partition. Next must not be called concurrently with
// itself; Close may be called at any time, from any goroutine.
type reader struct {
	l       *Log
	p       *partition
	next    int64              // offset of the next record to return
	pending []intentlog.Record // decoded records from next on, not yet returned

	// Where the batch at offset posOff starts in segment posBase, to resume
	// without an index lookup; valid when posOK.
	posOK   bool
	posBase int64
	pos     int64
	posOff  int64

	done chan struct{}
	once sync.Once
}

// NewReader implements intentlog.Log. An offset outside [start, end] fails
// here with ErrOffsetOutOfRange (not at the first Next); reading from end
// waits for the next record.
func (l *Log) NewReader(topic string, partition int32, offset int64) (intentlog.Reader, error) {
	p, err := l.partition("new reader", topic, partition)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	closed, start, end := p.closed, p.start, p.end
	p.mu.Unlock()
	switch {
	case closed:
		return nil, fmt.Errorf("embedded: new reader %s/%d: %w", topic, partition, p.closedErr())
	case offset < start || offset > end:
		return nil, fmt.Errorf("embedded: new reader %s/%d at %d: bounds are [%d, %d]: %w",
			topic, partition, offset, start, end, intentlog.ErrOffsetOutOfRange)
	}
	return &reader{l: l, p: p, next: offset, done: make(chan struct{})}, nil
}

// Close implements intentlog.Reader; it wakes a blocked Next.
func (r *reader) Close() error {
	r.once.Do(func() { close(r.done) })
	return nil
}

// Position implements intentlog.Reader.
func (r *reader) Position() int64 { return r.next }

// Next implements intentlog.Reader.
func (r *reader) Next(ctx context.Context) ([]intentlog.Record, error) {
	for {
		select {
		case <-r.done:
			return nil, r.wrap(intentlog.ErrClosed)
		default:
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if len(r.pending) > 0 {
			return r.takePending(), nil
		}
		v, err := r.p.view(r.next)
		if err != nil {
			return nil, r.wrap(err)
		}
		if v.gapTo > 0 {
			// Skip the gap: no records and a moved Position, as the
			// interface allows.
			r.next, r.posOK = v.gapTo, false
			return nil, nil
		}
		if v.seg == nil {
			if err := r.wait(ctx, v.notify); err != nil {
				return nil, err
			}
			continue
		}
		recs, err := r.read(v)
		if errors.Is(err, errStaleIndex) {
			if v.index, err = r.p.reindex(v.seg, v.index); err == nil {
				recs, err = r.read(v)
			}
		}
		r.p.release(v.seg)
		if err != nil {
			if err = r.p.readErr(err); errors.Is(err, intentlog.ErrCorrupt) {
				err = fmt.Errorf("%w; %s", err, RepairHint)
			}
			return nil, r.wrap(err)
		}
		return recs, nil
	}
}

func (r *reader) wrap(err error) error {
	return fmt.Errorf("embedded: read %s/%d: %w", r.p.topic, r.p.id, err)
}

// wait blocks until the partition grows, ctx ends or a Close.
func (r *reader) wait(ctx context.Context, notify <-chan struct{}) error {
	select {
	case <-notify:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-r.done:
		return r.wrap(intentlog.ErrClosed)
	case <-r.l.closing:
		return r.wrap(intentlog.ErrClosed)
	}
}

func (r *reader) takePending() []intentlog.Record {
	k := min(len(r.pending), maxReadRecords)
	out := r.pending[:k:k]
	r.pending = r.pending[k:]
	if len(r.pending) == 0 {
		r.pending = nil
	}
	r.next += int64(k)
	return out
}

// read returns at least one record from r.next on, read from the durable part
// of v.seg, or an error.
func (r *reader) read(v view) ([]intentlog.Record, error) {
	s := v.seg
	entry, indexed := entryForOffset(v.index, uint32(r.next-s.base))
	pos := int64(entry.pos)
	if r.posOK && r.posBase == s.base && r.posOff == r.next {
		pos, indexed = r.pos, false
	}
	f, err := r.l.files.acquire(s)
	if err != nil {
		err = storageErr(err)
		r.p.readFailed(s, pos, err)
		return nil, err
	}
	defer r.l.files.release(s)
	fr := frameReader{r: f, pos: pos, limit: v.size, chunk: readerChunk}
	var out []intentlog.Record
	for n := 0; len(out) < maxReadRecords && n < maxReadBytes; {
		frame, fpos, err := fr.next()
		if err == io.EOF {
			break
		}
		if indexed {
			// The first batch must be the one the index entry names
			// (reindex.go).
			if (err == nil || errors.Is(err, intentlog.ErrCorrupt)) && !matchesEntry(frame, s.base, entry) {
				return nil, errStaleIndex
			}
			indexed = false
		}
		var h batchHeader
		had := len(out)
		if err == nil {
			h, out, err = r.decode(out, frame, fr.limit-fpos)
		}
		if err != nil && len(out) > 0 {
			r.p.readOK(s, pos, fpos)
			return out, nil // the next call starts at the bad batch and fails there
		}
		if err != nil {
			r.p.readFailed(s, fpos, err)
			return nil, fmt.Errorf("%s at position %d: %w", s.logPath, fpos, err)
		}
		if len(out) == had {
			continue // batch before r.next
		}
		r.next += int64(min(len(out), maxReadRecords) - had)
		r.posOK, r.posBase, r.pos, r.posOff = true, s.base, fr.pos, h.next()
		n += len(frame)
	}
	if len(out) == 0 {
		r.p.readFailed(s, fr.pos, offsetGap{corrupt("offset %d missing before it", r.next)})
		return nil, fmt.Errorf("%s: offset %d missing before position %d: %w",
			s.logPath, r.next, fr.pos, intentlog.ErrCorrupt)
	}
	r.p.readOK(s, pos, fr.pos)
	if len(out) > maxReadRecords {
		r.pending = compact(out[maxReadRecords:])
		out = out[:maxReadRecords:maxReadRecords]
	}
	return out, nil
}

// compact returns a copy of recs whose bytes (keys, values, headers) are
// copied into one buffer of their own: records held between reads
// (pending) then keep only their own bytes, not the read's chunk of the
// file (256 KiB), record array and header array they alias, which a
// reader of each partition of every stream whose client reads nothing
// held (half a MiB each, counted in no read-ahead budget).
func compact(recs []intentlog.Record) []intentlog.Record {
	n, h := 0, 0
	for i := range recs {
		n += len(recs[i].Key) + len(recs[i].Value) + len(recs[i].RouteKey)
		for _, x := range recs[i].Headers {
			n += len(x.Value)
		}
		h += len(recs[i].Headers)
	}
	buf := make([]byte, 0, n)
	hdrs := make([]intentlog.Header, 0, h)
	take := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		buf = append(buf, b...)
		return buf[len(buf)-len(b) : len(buf) : len(buf)]
	}
	out := make([]intentlog.Record, len(recs))
	for i, r := range recs {
		r.Key, r.Value, r.RouteKey = take(r.Key), take(r.Value), take(r.RouteKey)
		if r.Headers != nil {
			k := len(hdrs)
			for _, x := range r.Headers {
				hdrs = append(hdrs, intentlog.Header{Key: x.Key, Value: take(x.Value)})
			}
			r.Headers = hdrs[k:len(hdrs):len(hdrs)]
		}
		out[i] = r
	}
	return out
}

// offsetGap is the ErrCorrupt of a read whose batches skip the offset it
// wants: a batch starts past it, or the segment ends before it. The
// damage may be elsewhere than where the read stopped (a batch before
// with a damaged base offset seems to hold earlier offsets, and a read
// skips such batches by their header alone, without their CRC, so that a
// reader past damage it does not need is not stopped by it).
type offsetGap struct{ error }

func (e offsetGap) Unwrap() error { return e.error }

// decode appends to out the records of frame from r.next on (nothing when
// the batch ends before r.next, checking only its framing then). left is
// the bytes from the frame's start to the end of what the read may see:
// the first batch a read decodes sizes out for all of them.
func (r *reader) decode(out []intentlog.Record, frame []byte, left int64) (batchHeader, []intentlog.Record, error) {
	h, err := parseHeader(frame)
	if err != nil || h.next() <= r.next {
		return h, out, err
	}
	if h.base > r.next {
		return h, out, offsetGap{corrupt("batch starts at offset %d, expected %d", h.base, r.next)}
	}
	if out == nil {
		out = make([]intentlog.Record, 0, readCap(h.count, len(frame), left))
	}
	had := len(out)
	h, out, err = decodeBatch(out, frame)
	if err != nil {
		return h, out, err
	}
	if skip := int(r.next - h.base); skip > 0 {
		out = append(out[:had], out[had+skip:]...)
	}
	for i := had; i < len(out); i++ {
		out[i].Partition = r.p.id
	}
	return h, out, nil
}

// readCap guesses how many records a read returns from its first batch
// (count records in size bytes) and the bytes left to read from its start,
// so that the read allocates its records once: as many as batches of that
// shape fill, up to maxReadRecords plus a batch that crosses it.
func readCap(count, size int, left int64) int {
	batches := (min(left, maxReadBytes) + int64(size) - 1) / int64(size)
	return int(min(int64(count)*batches, int64(maxReadRecords+count)))
}

// view is what a reader may read of the segment holding an offset.
type view struct {
	seg    *segment // referenced (release it); nil at the end of the partition
	gapTo  int64    // > 0: no offsets exist from the asked one up to gapTo
	size   int64
	index  []indexEntry
	notify <-chan struct{}
}

// view returns the segment holding off, or the wake-up channel when off is
// the end.
func (p *partition) view(off int64) (view, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return view{}, p.closedErr()
	}
	if off < p.start || off > p.end {
		return view{}, fmt.Errorf("offset %d outside [%d, %d]: %w", off, p.start, p.end, intentlog.ErrOffsetOutOfRange)
	}
	if off == p.end {
		return view{notify: p.notify}, nil
	}
	i := sort.Search(len(p.segs), func(i int) bool { return p.segs[i].base > off }) - 1
	s := p.segs[i]
	if off >= s.next && i < len(p.segs)-1 {
		// Offsets a repair removed (listed in the partition's #lost file).
		return view{gapTo: p.segs[i+1].base}, nil
	}
	s.refs++
	return view{seg: s, size: s.size, index: s.index, notify: p.notify}, nil
}

// readErr turns a read failure caused by Close into ErrClosed.
func (p *partition) readErr(err error) error {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed && !errors.Is(err, intentlog.ErrCorrupt) {
		return p.closedErr()
	}
	return err
}

// offsetForTime returns the first offset with a timestamp >= ts (unix µs),
// or the end offset. Timestamps never decrease within a partition, so the
// first segment whose newest timestamp is >= ts holds it.
func (p *partition) offsetForTime(ts int64) (int64, error) {
	from := int64(-1)
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return 0, p.closedErr()
		}
		var v view
		for _, s := range p.segs {
			if s.base > from && s.size > 0 && s.maxTS >= ts {
				s.refs++
				v = view{seg: s, size: s.size, index: s.index}
				break
			}
		}
		end := p.end
		p.mu.Unlock()
		if v.seg == nil {
			return end, nil
		}
		off, found, err := p.scanTime(v, ts)
		if errors.Is(err, errStaleIndex) {
			if v.index, err = p.reindex(v.seg, v.index); err == nil {
				off, found, err = p.scanTime(v, ts)
			}
		}
		p.release(v.seg)
		if err != nil || found {
			return off, p.readErr(err)
		}
		from = v.seg.base
	}
}

// scanTime looks for the first record with a timestamp >= ts in v.
func (p *partition) scanTime(v view, ts int64) (int64, bool, error) {
	entry, indexed := entryForTime(v.index, ts)
	f, err := p.log.files.acquire(v.seg)
	if err != nil {
		err = storageErr(err)
		p.readFailed(v.seg, int64(entry.pos), err)
		return 0, false, err
	}
	defer p.log.files.release(v.seg)
	fr := frameReader{r: f, pos: int64(entry.pos), limit: v.size, chunk: readerChunk, reuse: true}
	var recs []intentlog.Record
	for {
		frame, pos, err := fr.next()
		if err == io.EOF {
			p.readOK(v.seg, int64(entry.pos), pos)
			return 0, false, nil
		}
		if indexed {
			// The batch the index entry names, or records before ts may
			// be skipped (reindex.go).
			if (err == nil || errors.Is(err, intentlog.ErrCorrupt)) && !matchesEntry(frame, v.seg.base, entry) {
				return 0, false, errStaleIndex
			}
			indexed = false
		}
		if err == nil {
			if _, recs, err = decodeBatch(recs[:0], frame); err == nil {
				for _, rec := range recs {
					if rec.Timestamp.UnixMicro() >= ts {
						p.readOK(v.seg, int64(entry.pos), fr.pos)
						return rec.Offset, true, nil
					}
				}
				continue
			}
		}
		p.readFailed(v.seg, pos, err)
		return 0, false, fmt.Errorf("%s at position %d: %w", v.seg.logPath, pos, err)
	}
}
