package resolver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// TestDeadLetterRecordFields: a dead-letter record says when the key's
// failed attempts began and ended and when it was written, and keeps at
// most maxLetterErrorBytes of the error (a store's message may quote a
// whole row), even when the whole error would fit the record limit.
func TestDeadLetterRecordFields(t *testing.T) {
	t.Parallel()
	r := New(nil, nil, nil, Config{InstanceID: "r1"})
	l := newLoop(r, "t", 3, nil)
	long := strings.Repeat("x", 3*maxLetterErrorBytes)
	first, last, now := t0.Add(-time.Minute), t0.Add(-time.Second), t0
	lt := &Letter{Key: []byte("k"), Kind: LetterPublish, Err: long, Permanent: true, Attempts: 5, FirstAttempt: first, LastAttempt: last,
		Intents: []intent.Intent{{Table: "t", Key: []byte("k"), Op: intent.Upsert, Version: 7, ID: "id"}}, Offsets: []int64{42}}
	ds := l.deadLetters(lt, now)
	if len(ds) != 1 {
		t.Fatalf("%d records, want 1", len(ds))
	}
	d := ds[0]
	if d.FirstAttemptUs != first.UnixMicro() || d.LastAttemptUs != last.UnixMicro() || d.DeadAtUs != now.UnixMicro() {
		t.Errorf("attempts from %d to %d, dead at %d; want %d, %d, %d", d.FirstAttemptUs, d.LastAttemptUs, d.DeadAtUs,
			first.UnixMicro(), last.UnixMicro(), now.UnixMicro())
	}
	if want := cutError(long, maxLetterErrorBytes); d.Error != want {
		t.Errorf("error of %d bytes, want it cut to %d", len(d.Error), len(want))
	}
	if d.Kind != wailv1.DeadLetterKind_DEAD_LETTER_KIND_PUBLISH || !d.Permanent || d.Attempts != 5 || len(d.IntentOffsets) != 1 || d.IntentOffsets[0] != 42 {
		t.Errorf("record %+v", d)
	}
}

// TestLetterNotARecord: a letter that cannot be a dead-letter record (no
// table, no intents) takes 0 bytes by letterBytes, so fitLetters and
// fitLimit never take it for one that fits, and letterRecords refuses it
// rather than handing the log a record it has not got.
func TestLetterNotARecord(t *testing.T) {
	t.Parallel()
	for _, d := range []*wailv1.DeadLetter{
		{Partition: 1, Key: []byte("k"), Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_READ},             // no table
		{Table: "t", Partition: 1, Key: []byte("k"), Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_READ}, // no intents
	} {
		if b := letterBytes(d); b != 0 {
			t.Errorf("letterBytes(%v) = %d, want 0", d, b)
		}
		good := &wailv1.DeadLetter{Table: "t", Partition: 1, Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP, GapStartOffset: 1, GapEndOffset: 2}
		if recs, err := letterRecords([]*wailv1.DeadLetter{good, d}); err == nil {
			t.Errorf("letterRecords(%v) = %v, want an error", d, recs)
		}
	}
}

// TestScanLettersUnprovisioned: a table whose dead-letter topic is not
// provisioned (yet) has no letters: the scan finds none and fails nothing
// (writing a letter fails and is retried instead), so the partition starts.
func TestScanLettersUnprovisioned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	found, err := scanLetters(ctx, log, "t", 0, time.UnixMilli(0))
	if err != nil || len(found.offsets) != 0 || len(found.gaps) != 0 || len(found.settled()) != 0 {
		t.Fatalf("scan of an unprovisioned topic: %+v, %v; want nothing, no error", found, err)
	}
}

// TestLettersRefusedNotFitting: a letter refused whose record does not fit
// the limit as read is too large at once, even at the first refusal in a
// row, unless the limit read again is lower (then it is cut again); the
// letters of a job of several refused go alone from then on (suspect),
// none of them reported too large yet.
func TestLettersRefusedNotFitting(t *testing.T) {
	t.Parallel()
	logger, _ := testLogger()
	cfg := testConfig(logger, NewMetrics(nil))
	r := New(nil, nil, nil, cfg)
	tooLarge := cfg.Metrics.lettersTooLarge.WithLabelValues("refused")
	letter := func(key string) *wailv1.DeadLetter {
		return &wailv1.DeadLetter{Table: "refused", Key: []byte(key), Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_READ,
			Intents: []*wailv1.Intent{{Version: 1}}, IntentOffsets: []int64{0}}
	}
	l := newLoop(r, "refused", 0, nil)
	l.m = cfg.Metrics.partition("refused", 0, 1)
	d := letter("k")
	l.letterRecord = letterBytes(d) - 1 // it does not fit
	j := &pubJob{letters: []Letter{{Key: []byte("k")}}, records: []*wailv1.DeadLetter{d}}
	l.lettersRefused(j, true)
	if n := testutil.ToFloat64(tooLarge); n != 0 || l.letterTooLarge != "" {
		t.Fatalf("refusal under a lowered limit: counted %v, key %q; want nothing", n, l.letterTooLarge)
	}
	l.refusals = 0
	l.lettersRefused(j, false)
	if n := testutil.ToFloat64(tooLarge); n != 1 || l.letterTooLarge != "k" {
		t.Fatalf("first refusal of a letter that does not fit: counted %v, key %q; want 1 and k", n, l.letterTooLarge)
	}

	l = newLoop(r, "refused", 1, nil)
	l.m = cfg.Metrics.partition("refused", 1, 1)
	l.refusals = 1 // not the first in a row
	l.letterRecord = DefaultAppendBytes
	j = &pubJob{letters: []Letter{{Key: []byte("a")}, {Key: []byte("b")}}, records: []*wailv1.DeadLetter{letter("a"), letter("b")}}
	l.lettersRefused(j, false)
	if n := testutil.ToFloat64(tooLarge); n != 2 || l.letterTooLarge != "" || !l.suspect["a"] || !l.suspect["b"] {
		t.Fatalf("a job of two letters refused: counted %v in all, key %q, suspects %v; want 2, none, a and b", n, l.letterTooLarge, l.suspect)
	}
}

// TestScanLettersOfItsPartition: a scan finds only the letters of its
// partition: another partition's letter at the same intent offset must
// not pass for this one's (its letter would never be written).
func TestScanLettersOfItsPartition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	if err := log.CreateTopic(ctx, dlq.Topic("t"), dlq.Partitions, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	other := []*wailv1.DeadLetter{
		{Table: "t", Partition: 1, Key: []byte("k"), Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_READ,
			Intents: []*wailv1.Intent{{Version: 7}}, IntentOffsets: []int64{5}},
		{Table: "t", Partition: 1, Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP, GapStartOffset: 8, GapEndOffset: 9},
	}
	recs, err := letterRecords(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := log.Append(ctx, dlq.Topic("t"), recs); err != nil {
		t.Fatal(err)
	}
	found, err := scanLetters(ctx, log, "t", 0, time.UnixMilli(0))
	if err != nil || len(found.offsets) != 0 || len(found.gaps) != 0 || len(found.settled()) != 0 {
		t.Fatalf("partition 0 found %+v, %v; want none of partition 1's letters", found, err)
	}
	if found, err := scanLetters(ctx, log, "t", 1, time.UnixMilli(0)); err != nil || !found.offsets[5] || found.gaps[8] != 9 {
		t.Fatalf("partition 1 found %+v, %v; want its letter at 5 and gap [8, 9)", found, err)
	}
}
