package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestIntentBoundCoversEveryRecord: sizeOf's bound of a mutation's intent
// (intentFixed plus twice its key) is at least the record the log counts
// (the embedded log's framing: timestamp delta, key, value, header count)
// for each intent the write path appends of it: its upsert or delete, with
// or without a trace, and the ABORT appended after a store write that
// failed, at keys whose lengths cross a varint boundary. Below it, a
// merged batch the proxy sized could be refused by the log as a whole
// (its ABORT append too).
func TestIntentBoundCoversEveryRecord(t *testing.T) {
	t.Parallel()
	p := New(nil, nil, nil, mustClock(t), Limits{}, nil)
	const table = "a_table_name"
	fixed := intentFixed(table)
	framed := func(r *intentlog.Record) int {
		return intentlog.VarintLen(0) + intentlog.VarintLen(int64(len(r.Key))) + len(r.Key) +
			intentlog.VarintLen(int64(len(r.Value))) + len(r.Value) + intentlog.VarintLen(int64(len(r.Headers)))
	}
	now := time.UnixMicro(math.MaxInt64 / 2)
	for _, keyLen := range []int{1, 63, 64, 127, 128, 129, 16383, 16384, 1 << 20} {
		key := bytes.Repeat([]byte{'k'}, keyLen)
		bound := sizeOf(fixed, []Mutation{{Table: table, Key: key}}, []int{0}).intents
		for _, c := range []struct {
			op    intent.Op
			trace string
		}{{intent.Upsert, ""}, {intent.Delete, ""}, {intent.Upsert, intent.WidestTrace}, {intent.Delete, intent.WidestTrace},
			{intent.Abort, ""}} {
			r := p.intentRecord(table, key, c.op, math.MaxUint64, now, c.trace)
			if n := framed(r); n > bound {
				t.Errorf("key of %d bytes, op %v, trace %q: the record takes %d bytes, the bound %d", keyLen, c.op, c.trace, n, bound)
			}
		}
	}
}

// TestIntentFixedCoversTheWidest: the bound covers an intent at its
// widest (the largest numbers, the longest id, the widest trace, a
// timestamp delta of 10 bytes), not only the ones the write path makes
// today.
func TestIntentFixedCoversTheWidest(t *testing.T) {
	t.Parallel()
	const table = "t"
	for _, keyLen := range []int{1, 128, 4096} {
		key := bytes.Repeat([]byte{'k'}, keyLen)
		in := intent.Intent{
			Table: table, Key: key, Op: intent.Abort, Version: math.MaxUint64, ProxyID: math.MaxUint32,
			CreatedAt: time.UnixMicro(-1), PublishedFloor: math.MaxUint64, Trace: intent.WidestTrace,
			ID: fmt.Sprintf("%d-%d-abort", uint64(math.MaxUint32), uint64(math.MaxUint64)),
		}
		b, k, err := in.MarshalKeyed()
		if err != nil {
			t.Fatal(err)
		}
		framed := intentlog.VarintLen(math.MinInt64) + intentlog.VarintLen(int64(len(k))) + len(k) +
			intentlog.VarintLen(int64(len(b))) + len(b) + intentlog.VarintLen(0)
		if bound := sizeOf(intentFixed(table), []Mutation{{Table: table, Key: key}}, []int{0}).intents; framed > bound {
			t.Errorf("key of %d bytes: the widest record takes %d bytes, the bound %d", keyLen, framed, bound)
		}
	}
}

// TestSizeOf: a mutation's rows count its key, value (not a delete's) and
// document, and rowSlack; its intents intentFixed and twice its key.
func TestSizeOf(t *testing.T) {
	t.Parallel()
	muts := []Mutation{
		{Key: []byte("k1"), Value: make([]byte, 100), Doc: make([]byte, 30)},
		{Key: []byte("key2"), Value: make([]byte, 50), Delete: true, Doc: make([]byte, 7)},
	}
	for _, tc := range []struct {
		idx  []int
		want size
	}{
		{[]int{0}, size{intents: 1000 + 4, rows: 2 + 100 + 30 + rowSlack}},
		{[]int{1}, size{intents: 1000 + 8, rows: 4 + 7 + rowSlack}},
		{[]int{0, 1}, size{intents: 2000 + 12, rows: 2 + 100 + 30 + 4 + 7 + 2*rowSlack}},
	} {
		if got := sizeOf(1000, muts, tc.idx); got != tc.want {
			t.Errorf("sizeOf %v = %+v, want %+v", tc.idx, got, tc.want)
		}
	}
}

// appendLimiter is an intent log that takes appends of at most n bytes.
type appendLimiter int

func (n appendLimiter) AppendLimit(context.Context, string) (int, error) { return int(n), nil }

// TestFitsAppend: a write whose intents take exactly one append fits;
// one byte more is refused as invalid, naming the limit.
func TestFitsAppend(t *testing.T) {
	t.Parallel()
	p := &Proxy{limits: Limits{Intents: appendLimiter(500)}}
	if _, err := p.fitsAppend(t.Context(), "t", size{intents: 500}, 3); err != nil {
		t.Fatalf("intents exactly at the limit: %v", err)
	}
	if _, err := p.fitsAppend(t.Context(), "t", size{intents: 501}, 3); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "at most 500 bytes") {
		t.Fatalf("one byte over: %v; want ErrInvalid naming 500", err)
	}
}

// TestIntentFixedOfCached: a table's intent bound is computed once, then
// read back: a Write sizes its mutations without encoding an intent each
// time (0.4µs and allocations on every write), and the bound read back is
// intentFixed's.
func TestIntentFixedOfCached(t *testing.T) {
	p := New(nil, nil, nil, mustClock(t), Limits{}, nil)
	if got, want := p.intentFixedOf("orders"), intentFixed("orders"); got != want {
		t.Fatalf("intentFixedOf = %d, want %d", got, want)
	}
	if n := testing.AllocsPerRun(100, func() { p.intentFixedOf("orders") }); n != 0 {
		t.Errorf("intentFixedOf allocates %.1f times once the table's bound is known, want 0", n)
	}
	if got, want := p.intentFixedOf("orders"), intentFixed("orders"); got != want {
		t.Errorf("intentFixedOf read back %d, want %d", got, want)
	}
}
