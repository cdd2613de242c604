package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
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

// framedSize is what a record takes with a log's framing, counting each
// varint at its real width (the embedded log's format: a timestamp delta,
// then lengths; a Kafka record has a length, attributes and an offset
// delta more, at most 3+1+1 bytes for records this size).
func framedSize(r *intentlog.Record) int {
	n := 1 + varint(len(r.Key)) + len(r.Key) + varint(len(r.Value)) + len(r.Value) + varint(len(r.Headers))
	for _, h := range r.Headers {
		n += varint(len(h.Key)) + len(h.Key) + varint(len(h.Value)) + len(h.Value)
	}
	return n + 5
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
	for _, keyLen := range []int{1, 100, 4096} {
		t.Run(strconv.Itoa(keyLen), func(t *testing.T) {
			t.Parallel()
			w := &world{rows: map[string]store.Row{}}
			clock, _ := hlc.New(1, nil)
			var topic string
			tbs := tables{"orders": {Name: "orders", FailureMode: catalog.Transactional, VisibilityWindow: time.Second}}
			p := New(fakeLog{w}, fakeStore{w}, tbs, clock, Limits{MaxKeyBytes: 4096, MaxValueBytes: 2 << 20, MaxBatch: 10, Bus: busLimit{limit, &topic}}, nil)
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
			if r := put(n + 1); !errors.Is(r.Err, ErrInvalid) {
				t.Fatalf("one byte over the largest value (%d): %+v", n+1, r)
			}
			r = put(n)
			if r.Err != nil || !r.Stored {
				t.Fatalf("the largest value (%d): %+v", n, r)
			}
			ev := intent.Event{Table: "orders", Key: key, Op: intent.Upsert, Version: r.Version, Value: make([]byte, n),
				IntentAt: time.Now(), ResolvedAt: time.Now(), CoveredIntents: 3}
			rec, err := eventbus.Encode(&ev)
			if err != nil {
				t.Fatal(err)
			}
			if got := framedSize(rec); got > limit {
				t.Fatalf("the event of the largest value takes %d bytes, over the bus's %d", got, limit)
			}
			t.Logf("%d-byte key: largest value %d bytes, its event %d bytes of %d", keyLen, n, framedSize(rec), limit)
		})
	}
}

// TestEventOverheadBound: the cheap bound fitsBus checks first is never
// below the exact one, so it never accepts what the exact check refuses.
func TestEventOverheadBound(t *testing.T) {
	t.Parallel()
	for _, tl := range []int{1, 8, 63} {
		for _, kl := range []int{1, 2, 15, 16, 63, 64, 127, 128, 1000, 4096, 16384, 65536} {
			table, key := strings.Repeat("t", tl), bytes.Repeat([]byte{0xff}, kl)
			if exact, cheap := eventOverhead(table, key), 6*kl+3*tl+fastSlack; exact > cheap {
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
