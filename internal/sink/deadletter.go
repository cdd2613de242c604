package sink

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// A sink's dead letters are in the table dead-letter format (package dlq,
// kind SINK), one letter per event, in the sink's own topic
// (DeadLetterTopic): `wail sink dlq ls|show|drop` read and settle them
// with dlq.Queue; redrive (redrive.go) delivers them again through the
// sink's runner.

// Bounds of the letters of a batch.
const (
	// maxLetterEvent: an event larger than this (encoded) is kept in its
	// letter without its payload (event_stripped); redrive reads it from
	// the bus. It keeps a letter well under the log's record limit (1
	// MiB by default) and a redrive's batch of letters in memory small.
	maxLetterEvent = 64 << 10
	// maxLetterAppend bounds the bytes of one Append of letters (the
	// log's batch limit is 16 MiB by default; a batch of 10000 events
	// is appended in several).
	maxLetterAppend = 4 << 20
)

// failure is why a batch was given up on.
type failure struct {
	err         error
	status      int // the last answer's HTTP status (0: none)
	attempts    int
	first, last time.Time
	permanent   bool // the endpoint refused the batch (400, 413 alone, 415, 422)
}

// letters returns the dead letters of recs (offset -1: a snapshot row).
func (r *runner) letters(recs []intentlog.Record, f failure, now time.Time) []*wailv1.DeadLetter {
	out := make([]*wailv1.DeadLetter, 0, len(recs))
	for i := range recs {
		rec := &recs[i]
		ev, ok := decode(rec)
		if !ok || len(ev.Key) == 0 {
			continue // not an event: it was not sent either
		}
		// Key: the row key (the event's), not the bus record's key,
		// which is framed for a typed table; redrive matches on it.
		d := &wailv1.DeadLetter{
			Table: r.def.Table, Partition: rec.Partition, Key: ev.Key, Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_SINK,
			Error: f.err.Error(), Permanent: f.permanent, Attempts: uint32(f.attempts),
			FirstAttemptUs: f.first.UnixMicro(), LastAttemptUs: f.last.UnixMicro(), DeadAtUs: now.UnixMicro(),
			Sink: r.def.Name, Event: ev, EventOffset: rec.Offset, HttpStatus: int32(f.status),
		}
		if proto.Size(ev) > maxLetterEvent {
			d.Event = &wailv1.ChangeEvent{Table: ev.Table, Key: ev.Key, Op: ev.Op, Version: ev.Version, EventId: ev.EventId}
			d.EventStripped = true
		}
		out = append(out, d)
	}
	return out
}

// appendLetters appends letters to the sink's dead-letter topic (made on
// first use), in Appends of at most maxLetterAppend bytes.
func (r *runner) appendLetters(ctx context.Context, ls []*wailv1.DeadLetter) error {
	topic := DeadLetterTopic(r.def.Table, r.def.Name)
	r.dlqMu.Lock()
	if !r.dlq {
		opts := intentlog.TopicOptions{Retention: r.m.dlqRetention, Owner: r.m.LetterOwner(r.def.Table, r.def.TableCreatedAtUs)}
		if err := r.m.log.CreateTopic(ctx, topic, dlq.Partitions, opts); err != nil {
			r.dlqMu.Unlock()
			return fmt.Errorf("dead-letter topic %s: %w", topic, err)
		}
		r.dlq = true
	}
	r.dlqMu.Unlock()
	var batch []*intentlog.Record
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := r.m.log.Append(ctx, topic, batch); err != nil {
			return fmt.Errorf("dead-letter %d events to %s: %w", len(batch), topic, err)
		}
		batch, size = nil, 0
		return nil
	}
	for _, d := range ls {
		rec, err := dlq.LetterRecord(d)
		if err != nil {
			return fmt.Errorf("dead letter of %s: %w", topic, err)
		}
		n := intentlog.FramedSize(len(rec.Key), len(rec.Value))
		if size+n > maxLetterAppend {
			if err := flush(); err != nil {
				return err
			}
		}
		batch = append(batch, rec)
		size += n
	}
	return flush()
}

// Headers of the dead letters of wail before the DLQ format (a sink's
// topic then held the events as they were on the bus, with these).
const (
	legacyError    = "wail.sink.error"
	legacyAttempts = "wail.sink.attempts"
	legacySource   = "wail.sink.source" // <table>/<partition>/<offset>; a snapshot row: <table>/0/0
)

// legacyLetter reads a dead letter of the older format as a SINK letter
// of sink name (nil: not one), so that letters written before an upgrade
// are listed, redriven and dropped like the others. That format recorded
// a snapshot row at partition 0, offset 0: redrive finds no such event
// there and refuses it (redrive.go).
func legacyLetter(name string) func(*intentlog.Record) *wailv1.DeadLetter {
	return func(rec *intentlog.Record) *wailv1.DeadLetter {
		h := map[string]string{}
		for _, x := range rec.Headers {
			h[x.Key] = string(x.Value)
		}
		src, ok := h[legacySource]
		if !ok || len(rec.Key) == 0 {
			return nil
		}
		// The table may hold a '/': the last two fields are the position.
		j := strings.LastIndexByte(src, '/')
		i := strings.LastIndexByte(src[:max(j, 0)], '/')
		if i <= 0 {
			return nil
		}
		p, perr := strconv.ParseInt(src[i+1:j], 10, 32)
		off, oerr := strconv.ParseInt(src[j+1:], 10, 64)
		var ev wailv1.ChangeEvent
		if perr != nil || oerr != nil || proto.Unmarshal(rec.Value, &ev) != nil {
			return nil
		}
		attempts, _ := strconv.ParseUint(h[legacyAttempts], 10, 32)
		var at int64
		if !rec.Timestamp.IsZero() {
			at = rec.Timestamp.UnixMicro()
		}
		return &wailv1.DeadLetter{
			Table: src[:i], Partition: int32(p), Key: rec.Key, Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_SINK,
			Error: h[legacyError], Attempts: uint32(attempts), LastAttemptUs: at, DeadAtUs: at,
			Sink: name, Event: &ev, EventOffset: off, HttpStatus: errorStatus(h[legacyError]),
		}
	}
}

// errorStatus is the status of the last answer in a delivery error ("...
// HTTP 503: ...", as post writes it), or 0.
func errorStatus(msg string) int32 {
	_, after, ok := strings.Cut(msg, "HTTP ")
	if !ok || len(after) < 4 || after[3] != ':' {
		return 0
	}
	n, err := strconv.Atoi(after[:3])
	if err != nil || n < 100 {
		return 0
	}
	return int32(n)
}
