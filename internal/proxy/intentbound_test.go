package proxy

import (
	"bytes"
	"math"
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
