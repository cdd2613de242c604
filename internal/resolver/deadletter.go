package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// The resolver's side of the dead-letter queue (package dlq has the wire
// format): it turns the core's letters into records, finds the letters of
// a partition after a restart (so that none is written twice), and writes
// a gap letter when retention removed intents before they were resolved.

// maxLetterIntents and maxLetterIntentBytes bound the intents of one
// dead-letter record (their count, their encoded size): a hot key parked
// for long gathers many. Each record is also cut to the dead-letter
// topic's record limit (fitLetters).
const (
	maxLetterIntents     = 1000
	maxLetterIntentBytes = 256 << 10
)

// maxLetterErrorBytes bounds the error detail a dead letter keeps (a
// store's message may quote a whole row); a letter that does not fit its
// record limit even so keeps minLetterErrorBytes of it.
const (
	maxLetterErrorBytes = 4 << 10
	minLetterErrorBytes = 256
)

// scanTimeout bounds a read of the dead-letter topic.
const scanTimeout = 30 * time.Second

// deadLetters turns a core letter into dead-letter records that fit the
// dead-letter topic's record limit (l.letterRecord), in chunks of at most
// maxLetterIntents intents and maxLetterIntentBytes of them. When one
// intent alone does not fit, the letter is made compact: its error
// detail cut to minLetterErrorBytes and its intents without their copies
// of the key and table (the letter holds them once). What still does not
// fit (a key nearly as large as the limit) goes as it is: the topic
// refuses it and the loop says so (lettersTooLarge).
func (l *loop) deadLetters(lt *Letter, now time.Time) []*wailv1.DeadLetter {
	limit := l.letterRecord
	if limit <= 0 {
		limit = DefaultAppendBytes
	}
	tmpl := &wailv1.DeadLetter{
		Table: l.table, Partition: l.partition, Key: lt.Key, Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_PUBLISH,
		Error: cutError(lt.Err, maxLetterErrorBytes), Permanent: lt.Permanent, Attempts: uint32(lt.Attempts),
		FirstAttemptUs: lt.FirstAttempt.UnixMicro(), LastAttemptUs: lt.LastAttempt.UnixMicro(),
		ResolverId: l.r.cfg.InstanceID, DeadAtUs: now.UnixMicro(),
	}
	if lt.Kind == LetterRead {
		tmpl.Kind = wailv1.DeadLetterKind_DEAD_LETTER_KIND_READ
	}
	if out, ok := fitLetters(tmpl, lt, limit, false); ok {
		return out
	}
	tmpl.Error = cutError(lt.Err, minLetterErrorBytes)
	out, _ := fitLetters(tmpl, lt, limit, true)
	return out
}

// fitLetters splits the intents of lt over copies of tmpl whose records
// each take at most limit bytes (letterBytes), and reports whether they
// do (one intent alone may not fit). Compact leaves the key and table out
// of the intents.
func fitLetters(tmpl *wailv1.DeadLetter, lt *Letter, limit int, compact bool) ([]*wailv1.DeadLetter, bool) {
	// head bounds a record without intents; each intent adds its field
	// (tag, length, message) and its offset (a packed varint), and the
	// lengths around them may grow by a few bytes (slack).
	const slack = 24
	head := intentlog.FramedSize(len(tmpl.Key), proto.Size(&wailv1.DeadLetterRecord{Entry: &wailv1.DeadLetterRecord_Letter{Letter: tmpl}})) + slack
	var out []*wailv1.DeadLetter
	var d *wailv1.DeadLetter
	size, est := 0, 0
	for k := range lt.Intents {
		in := lt.Intents[k].Proto()
		if compact {
			in.Key, in.Table = nil, ""
		}
		n := proto.Size(in)
		cost := 1 + intentlog.VarintLen(int64(n)) + n + binary.MaxVarintLen64
		if d == nil || len(d.Intents) == maxLetterIntents || size+n > maxLetterIntentBytes || est+cost > limit {
			d = proto.Clone(tmpl).(*wailv1.DeadLetter)
			out = append(out, d)
			size, est = 0, head
		}
		d.Intents = append(d.Intents, in)
		d.IntentOffsets = append(d.IntentOffsets, lt.Offsets[k])
		size += n
		est += cost
	}
	for _, d := range out {
		if b := letterBytes(d); b == 0 || b > limit {
			return out, false
		}
	}
	return out, true
}

// cutError returns err as valid UTF-8 (a proto string must be; a store's
// message may quote a binary key) of at most max bytes, saying how long
// it was when cut.
func cutError(err string, max int) string {
	err = strings.ToValidUTF8(err, "\uFFFD")
	if len(err) <= max {
		return err
	}
	note := fmt.Sprintf(" ... (cut: %d bytes in all)", len(err))
	cut := max - len(note)
	for cut > 0 && !utf8.RuneStart(err[cut]) {
		cut--
	}
	return err[:cut] + note
}

// letterBytes bounds the bytes the record of d takes in a log's batch
// (intentlog.FramedSize); 0 when d cannot be a record (writing it fails).
func letterBytes(d *wailv1.DeadLetter) int {
	rec, err := dlq.LetterRecord(d)
	if err != nil {
		return 0
	}
	return intentlog.FramedSize(len(rec.Key), len(rec.Value))
}

// gapLetter records that the intents [from, to) of a partition were
// removed (how: by what) before they were resolved.
func (r *Resolver) gapLetter(table string, p int32, from, to int64, by string, now time.Time) *wailv1.DeadLetter {
	return &wailv1.DeadLetter{
		Table: table, Partition: p, Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP,
		Error:          fmt.Sprintf("%s removed intent offsets [%d, %d) before the resolver resolved them", by, from, to),
		GapStartOffset: from, GapEndOffset: to, ResolverId: r.cfg.InstanceID, DeadAtUs: now.UnixMicro(),
	}
}

func letterRecords(ls []*wailv1.DeadLetter) ([]*intentlog.Record, error) {
	recs := make([]*intentlog.Record, 0, len(ls))
	for _, d := range ls {
		rec, err := dlq.LetterRecord(d)
		if err != nil {
			return nil, fmt.Errorf("resolver: dead letter of %s/%d: %w", d.Table, d.Partition, err)
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// lettersFound is what a partition's letters in the dead-letter topic
// settled.
type lettersFound struct {
	offsets map[int64]bool  // intent offsets
	gaps    map[int64]int64 // gap start -> end
	intents []Settled       // the intents the letters hold
}

// settled returns the intents the letters hold, for Core.AlreadySettled.
func (f lettersFound) settled() []Settled { return f.intents }

// missing returns the letters of ls that are not in the topic: those of
// intents with only the intents none in the topic holds. A letter's
// records may be cut otherwise than those that landed (the record limit
// read again since), so a record whose first intent landed may hold
// others that did not.
func (f lettersFound) missing(ls []*wailv1.DeadLetter) []*wailv1.DeadLetter {
	var out []*wailv1.DeadLetter
	for _, d := range ls {
		switch {
		case d.Kind == wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP:
			if f.gaps[d.GapStartOffset] != d.GapEndOffset {
				out = append(out, d)
			}
		case len(d.IntentOffsets) == 0:
			out = append(out, d)
		default:
			if rest := f.unfound(d); rest != nil {
				out = append(out, rest)
			}
		}
	}
	return out
}

// unfound returns d with only its intents whose offsets are not in the
// topic (d itself when none is), nil when every one is.
func (f lettersFound) unfound(d *wailv1.DeadLetter) *wailv1.DeadLetter {
	n := 0
	for _, o := range d.IntentOffsets {
		if !f.offsets[o] {
			n++
		}
	}
	switch n {
	case 0:
		return nil
	case len(d.IntentOffsets):
		return d
	}
	rest := proto.Clone(d).(*wailv1.DeadLetter)
	rest.Intents, rest.IntentOffsets = nil, nil
	for i, o := range d.IntentOffsets {
		if !f.offsets[o] {
			rest.IntentOffsets = append(rest.IntentOffsets, o)
			rest.Intents = append(rest.Intents, d.Intents[i]) // one per offset (fitLetters)
		}
	}
	return rest
}

// scanLetters reads a table's dead-letter topic from the first record
// appended at or after since, and returns what the letters of partition p
// settled.
func scanLetters(ctx context.Context, log Log, table string, p int32, since time.Time) (lettersFound, error) {
	ctx, cancel := context.WithTimeout(ctx, scanTimeout)
	defer cancel()
	topic := dlq.Topic(table)
	from, err := log.OffsetForTime(ctx, topic, 0, since)
	if errors.Is(err, intentlog.ErrUnknownTopic) {
		return lettersFound{offsets: map[int64]bool{}, gaps: map[int64]int64{}}, nil // not provisioned (yet): no letters; writing one fails and is retried
	}
	if err != nil {
		return lettersFound{}, fmt.Errorf("resolver: scan %s: %w", topic, err)
	}
	return scanLettersAt(ctx, log, table, p, from, false)
}

// scanLettersAt reads a table's dead-letter topic from offset from (from
// its start when that is later), and returns what the letters of
// partition p settled: only their gaps when gapsOnly.
func scanLettersAt(ctx context.Context, log Log, table string, p int32, from int64, gapsOnly bool) (lettersFound, error) {
	found := lettersFound{offsets: map[int64]bool{}, gaps: map[int64]int64{}}
	ctx, cancel := context.WithTimeout(ctx, scanTimeout)
	defer cancel()
	topic := dlq.Topic(table)
	start, end, err := log.Bounds(ctx, topic, 0)
	if errors.Is(err, intentlog.ErrUnknownTopic) {
		return found, nil // not provisioned (yet): no letters; writing one fails and is retried
	}
	if err != nil {
		return found, fmt.Errorf("resolver: scan %s: %w", topic, err)
	}
	from = max(from, start)
	if from >= end {
		return found, nil
	}
	rd, err := log.NewReader(topic, 0, from)
	if err != nil {
		return found, fmt.Errorf("resolver: scan %s: %w", topic, err)
	}
	defer rd.Close()
	for rd.Position() < end {
		recs, err := rd.Next(ctx)
		if err != nil {
			return found, fmt.Errorf("resolver: scan %s at %d: %w", topic, rd.Position(), err)
		}
		for i := range recs {
			m, err := dlq.Decode(recs[i].Value)
			if err != nil {
				continue // not ours to judge here; the dead-letter tools report it
			}
			d := m.GetLetter()
			if d == nil || d.Partition != p {
				continue
			}
			if d.Kind == wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP {
				found.gaps[d.GapStartOffset] = d.GapEndOffset
			}
			if gapsOnly {
				continue
			}
			for i, o := range d.IntentOffsets {
				found.offsets[o] = true
				if i < len(d.Intents) {
					found.intents = append(found.intents, Settled{Offset: o, Key: string(d.Key), Version: d.Intents[i].Version})
				}
			}
		}
	}
	return found, nil
}

// errGap: the intent reader fell below the log start (retention removed
// intents it had not read): the partition starts again, which records the
// gap.
var errGap = errors.New("resolver: the intent log's retention passed the reader")

// errTruncated: the intent log lost intents the reader had read (an
// *intentlog.Truncation says from where); the partition starts again
// from there.
var errTruncated = errors.New("resolver: the intent log lost intents it had read")

// What removes intents before they are resolved (gap letters say which).
const (
	byRetention = "log retention"
	byRepair    = "a repair of damaged log bytes (wail log repair)"
)

// gapEnd returns where the gap letters found that start at from (and
// those that go on from their ends) end: from itself when there are none.
func (f lettersFound) gapEnd(from int64) int64 {
	for end, ok := f.gaps[from]; ok && end > from; end, ok = f.gaps[from] {
		from = end
	}
	return from
}

// recordGap writes a gap letter for the intents [from, to) of a partition
// that retention removed and commits to, before the partition goes on
// from there: never a silent skip. With from >= to (the letters are
// written already) it only commits.
func (r *Resolver) recordGap(ctx context.Context, pub publisher, table string, p int32, from, to int64) error {
	committed := false
	if from < to {
		var err error
		if committed, err = r.gap(ctx, pub, table, p, from, to, byRetention, to); err != nil {
			return err
		}
	}
	if !committed {
		if err := pub.commit(ctx, to); err != nil {
			return fmt.Errorf("resolver: commit past the retention gap of %s/%d: %w", intent.Topic(table), p, err)
		}
	}
	if from >= to {
		return nil // the run that wrote the letters said so
	}
	r.cfg.Logger.Error("resolver: the intent log's retention removed intents before they were resolved; "+
		"their keys may lack events. Run `wail table reconcile "+table+"` to publish every key whose stored version is newer than its last event, "+
		"and raise log.retention (or fix what kept the resolver behind)",
		"table", table, "partition", p, "lost_offsets_from", from, "lost_offsets_to", to)
	return nil
}

// recordLost writes a gap letter for each range of a partition's intents
// from the committed offset on that the log lost to a repair (Log.Lost):
// the reader skips them, but never silently. A range whose letter an
// earlier run wrote (found among the partition's letters) is not written
// again. The committed offset stays where it is: intents before the range
// may be unresolved.
func (r *Resolver) recordLost(ctx context.Context, pub publisher, table string, p int32, committed int64, found lettersFound) error {
	lost, err := r.log.Lost(ctx, intent.Topic(table), p)
	if err != nil {
		return fmt.Errorf("resolver: lost offsets of %s/%d: %w", intent.Topic(table), p, err)
	}
	for _, g := range lost {
		from := max(g.From, committed)
		if g.To <= from || found.gaps[from] == g.To {
			continue // resolved before they were lost, or recorded already
		}
		if _, err := r.gap(ctx, pub, table, p, from, g.To, byRepair, committed); err != nil {
			return err
		}
		r.cfg.Logger.Error("resolver: a repair of the intent log (wail log repair) removed intents before they were resolved; "+
			"their keys may lack events. Run `wail table reconcile "+table+"` to publish every key whose stored version is newer than its last event",
			"table", table, "partition", p, "lost_offsets_from", from, "lost_offsets_to", g.To)
	}
	return nil
}

// gap writes the gap letter of intents [from, to), with offset committed
// with it when the publisher can (committed), and counts it.
func (r *Resolver) gap(ctx context.Context, pub publisher, table string, p int32, from, to int64, by string, offset int64) (committed bool, err error) {
	d := r.gapLetter(table, p, from, to, by, time.Now())
	if committed, err = pub.letters(ctx, []*wailv1.DeadLetter{d}, offset); err != nil {
		return false, fmt.Errorf("resolver: record the gap [%d, %d) of %s/%d (%s): %w", from, to, intent.Topic(table), p, by, err)
	}
	r.cfg.Metrics.gap(table, to-from)
	return committed, nil
}

// lettersRefused takes a job of letters the dead-letter topic refused as
// too large although each record was cut to its record limit (deadLetters),
// once the limits were read again. When the limit read again is lower
// (lowered: an operator lowered the topic's max.message.bytes since it was
// read), or, at the first refusal in a row, the records fit the limit as
// read (a broker may answer the old limit for a moment after a change; the
// log reads it again at each refusal), the letters are cut to the limit
// read at their next try: nothing to report but a warning. Otherwise a
// letter cannot fit the limit: the letters of a job of several go alone
// from now on, so that one that cannot fit holds back no other; one alone
// that was refused makes the partition unhealthy (observeHealth) until it
// lands.
func (l *loop) lettersRefused(j *pubJob, lowered bool) {
	l.refusals++
	if lowered || (l.refusals == 1 && l.fitLimit(j.records)) {
		l.logEvery("dlq-limit-lowered", warnEvery, func() {
			l.r.cfg.Logger.Warn("resolver: the dead-letter topic refused letters cut to its record limit as it was read: the limit was lowered "+
				"since (Kafka: the topic's max.message.bytes); the letters are cut to the limit read again and written again",
				"table", l.table, "partition", l.partition, "topic", dlq.Topic(l.table), "record_limit", l.letterRecord, "err", j.err)
		})
		return
	}
	l.m.lettersTooLarge.Inc()
	if len(j.letters) > 1 {
		for i := range j.letters {
			l.suspect[string(j.letters[i].Key)] = true
		}
		return
	}
	l.letterTooLarge = printable(j.letters[0].Key)
	l.logEvery("dlq-too-large", warnEvery, func() {
		l.r.cfg.Logger.Error("resolver: a dead letter does not fit the record limit of its dead-letter topic, even cut to its key, intents and "+
			"a short reason; its intents wait (the partition's committed offset stays below them). Raise the record limit of "+
			dlq.Topic(l.table)+" (Kafka: the topic's max.message.bytes); "+
			"the letter is written again with backoff and lands once it fits",
			"table", l.table, "partition", l.partition, "key", l.letterTooLarge, "record_limit", l.letterRecord, "err", j.err)
	})
}

// fitLimit says whether every record of ds fits the dead-letter topic's
// record limit as the loop last read it.
func (l *loop) fitLimit(ds []*wailv1.DeadLetter) bool {
	for _, d := range ds {
		if b := letterBytes(d); b == 0 || b > l.letterRecord {
			return false
		}
	}
	return len(ds) > 0
}
