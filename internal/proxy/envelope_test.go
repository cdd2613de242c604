package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
)

// busLimit is a RecordLimiter with a fixed limit.
type busLimit struct {
	bytes int
	topic *string
}

func (b busLimit) RecordLimit(_ context.Context, topic string) (int, string, error) {
	*b.topic = topic
	return b.bytes, "the test's bus", nil
}

// framedSize is the most a record can take with a log's framing: its
// lengths as varints at their real width, and what depends on the
// record's place in its batch at its widest (a Kafka record: a length of
// up to 5 bytes, attributes, a timestamp delta of up to 10 and an offset
// delta of up to 5; the embedded log's framing is within that).
func framedSize(r *intentlog.Record) int {
	n := varint(len(r.Key)) + len(r.Key) + varint(len(r.Value)) + len(r.Value) + varint(len(r.Headers))
	for _, h := range r.Headers {
		n += varint(len(h.Key)) + len(h.Key) + varint(len(h.Value)) + len(h.Value)
	}
	return n + 5 + 1 + binary.MaxVarintLen64 + 5
}

func varint(n int) int { return len(binary.AppendVarint(nil, int64(n))) }

var largestRe = regexp.MustCompile(`the largest value this key can take is (\d+) bytes`)

// TestFitsBus: with the bus's record limit at 1 MiB, a value of 1 MiB is
// refused with InvalidArgument naming the largest value the key can take
// and the source of the limit; one byte more than that is refused, that
// much is accepted, and its event, as the resolver builds it, fits.
func TestFitsBus(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	// The overhead the largest value leaves, pinned: it is the limit
	// users meet (docs/operations.md). Changing eventOverhead changes
	// these; the fit checked below must still hold.
	overheads := map[int]int{1: 463, 100: 1058, 4096: 25035}
	for _, keyLen := range []int{1, 100, 4096} {
		t.Run(strconv.Itoa(keyLen), func(t *testing.T) {
			t.Parallel()
			w := &world{Rows: map[string]store.Row{}}
			clock, _ := hlc.New(1, nil)
			var topic string
			tbs := tables{"orders": {Name: "orders", FailureMode: catalog.Transactional, VisibilityWindow: time.Second}}
			p := New(w.Log(), w.Store(), tbs, clock, Limits{MaxKeyBytes: 4096, MaxValueBytes: 2 << 20, MaxBatch: 10, Bus: busLimit{limit, &topic}}, nil)
			key := bytes.Repeat([]byte{'k'}, keyLen)
			put := func(n int) Result {
				return p.Write(context.Background(), []Mutation{{Table: "orders", Key: key, Value: make([]byte, n)}})[0]
			}
			r := put(1 << 20)
			if !errors.Is(r.Err, ErrInvalid) || !strings.Contains(r.Err.Error(), "the test's bus") || r.Version != 0 {
				t.Fatalf("1 MiB value: %+v, want ErrInvalid naming the limit's source", r)
			}
			if topic != eventbus.Topic("orders") {
				t.Errorf("asked the limit of topic %q, want the event topic", topic)
			}
			m := largestRe.FindStringSubmatch(r.Err.Error())
			if m == nil {
				t.Fatalf("no largest value in %v", r.Err)
			}
			n, _ := strconv.Atoi(m[1])
			if n != limit-overheads[keyLen] {
				t.Errorf("largest value %d bytes, want %d (the limit less %d)", n, limit-overheads[keyLen], overheads[keyLen])
			}
			if r := put(n + 1); !errors.Is(r.Err, ErrInvalid) {
				t.Fatalf("one byte over the largest value (%d): %+v", n+1, r)
			}
			r = put(n)
			if r.Err != nil || !r.Stored {
				t.Fatalf("the largest value (%d): %+v", n, r)
			}
			// Its event fits, at its widest: every field that varies
			// at its widest, framed as Kafka frames a record.
			ev := intent.Event{Table: "orders", Key: key, Op: intent.Upsert, Version: math.MaxUint64, Value: make([]byte, n),
				IntentAt: time.UnixMicro(-1), ResolvedAt: time.UnixMicro(-1), CoveredIntents: math.MaxUint32, SchemaID: math.MaxUint32,
				Trace: intent.WidestTrace}
			rec, err := eventbus.Encode(&ev)
			if err != nil {
				t.Fatal(err)
			}
			if got := framedSize(rec); got > limit {
				t.Fatalf("the event of the largest value takes %d bytes, over the bus's %d", got, limit)
			}
			t.Logf("%d-byte key: largest value %d bytes, its widest event %d bytes of %d", keyLen, n, framedSize(rec), limit)
		})
	}
}

// TestBusLimitBelowTheEnvelope: a bus whose record limit is below what
// the event of a key adds to its value (a topic's max.message.bytes set
// far too low) refuses every value of that key, the empty one included,
// and the error says the largest value the key can take is 0 bytes, not
// a negative number.
func TestBusLimitBelowTheEnvelope(t *testing.T) {
	t.Parallel()
	w := &world{Rows: map[string]store.Row{}}
	var topic string
	tbs := tables{"orders": {Name: "orders", FailureMode: catalog.Transactional, VisibilityWindow: time.Second}}
	p := New(w.Log(), w.Store(), tbs, mustClock(t), Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 1, Bus: busLimit{400, &topic}}, nil)
	for _, n := range []int{0, 1} {
		r := p.Write(context.Background(), []Mutation{{Table: "orders", Key: []byte("k"), Value: make([]byte, n)}})[0]
		if !errors.Is(r.Err, ErrInvalid) || !strings.Contains(r.Err.Error(), "the largest value this key can take is 0 bytes") || r.Version != 0 {
			t.Errorf("a value of %d bytes under a bus limit of 400: %+v, want ErrInvalid saying the largest value is 0 bytes", n, r)
		}
	}
}

// TestEventOverheadBound: the cheap bound fitsBus checks first is never
// below the exact one, so it never accepts what the exact check refuses.
func TestEventOverheadBound(t *testing.T) {
	t.Parallel()
	for _, tl := range []int{1, 8, 63} {
		for _, kl := range []int{1, 2, 15, 16, 63, 64, 127, 128, 1000, 4096, 16384, 65536} {
			table, key := strings.Repeat("t", tl), bytes.Repeat([]byte{0xff}, kl)
			if exact, cheap := eventOverhead(table, key), cheapOverhead(table, key); exact > cheap {
				t.Errorf("table of %d bytes, key of %d: overhead %d above the cheap bound %d", tl, kl, exact, cheap)
			}
		}
	}
}

// TestNoBusLimit: without a bus limit only limits.max_value_bytes applies.
func TestNoBusLimit(t *testing.T) {
	t.Parallel()
	w := &world{}
	p := newProxy(t, w)
	if r := p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("k"), Value: make([]byte, 16)}})[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
}

// failingLimit is a RecordLimiter whose log is closed.
type failingLimit struct{}

func (failingLimit) RecordLimit(context.Context, string) (int, string, error) {
	return 0, "", errors.New("log closed")
}

// TestBusLimitUnknown: when the bus cannot tell its record limit (the log
// is closing), a write is refused with Unavailable before it is stamped.
func TestBusLimitUnknown(t *testing.T) {
	t.Parallel()
	w := &world{Rows: map[string]store.Row{}}
	clock, _ := hlc.New(1, nil)
	tbs := tables{"orders": {Name: "orders", FailureMode: catalog.Transactional, VisibilityWindow: time.Second}}
	p := New(w.Log(), w.Store(), tbs, clock, Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 1, Bus: failingLimit{}}, nil)
	r := p.Write(context.Background(), []Mutation{{Table: "orders", Key: []byte("k"), Value: []byte("v")}})[0]
	if !errors.Is(r.Err, ErrUnavailable) || !strings.Contains(r.Err.Error(), "cannot learn how large an event the bus takes: log closed") || r.Version != 0 || len(w.Calls) != 0 {
		t.Fatalf("result %+v, calls %v", r, w.Calls)
	}
}
