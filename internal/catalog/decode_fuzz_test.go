package catalog

import (
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/wail-cdc/wail/internal/store"
)

// FuzzDecodeEntry: a table's catalog entry is read from the store, which
// other processes (other versions of wail, a hand edit) write: whatever
// it holds, reading it does not panic; an entry it takes has a partition
// count a table can have (the processes size their per-partition state,
// topics and readers by it) and encodes back to a definition that decodes
// the same.
func FuzzDecodeEntry(f *testing.F) {
	for _, t := range []Table{
		{Name: "a", FailureMode: Transactional, Partitions: 2},
		{Name: "orders", FailureMode: Independent, VisibilityWindow: time.Second, Partitions: 16, MaxAttempts: 5,
			MaxRetryTime: time.Hour, CreatedAt: time.UnixMicro(1_700_000_000_000_000), State: Dropping,
			KeyMessage: "shop.Key", ValueMessage: "shop.Order", WideWindow: time.Minute, WideUntil: time.UnixMicro(1_700_000_100_000_000)},
	} {
		b, err := t.encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// partitions -1, and a visibility window whose milliseconds overflow
	// a time.Duration.
	f.Add(protowire.AppendVarint(protowire.AppendTag([]byte{0x0a, 0x01, 'a'}, 4, protowire.VarintType), uint64(1<<64-1)))
	f.Add(protowire.AppendVarint(protowire.AppendTag([]byte{0x0a, 0x01, 'a'}, 3, protowire.VarintType), 1<<62))
	f.Fuzz(func(t *testing.T, spec []byte) {
		tb, err := Decode(spec)
		e := decodeEntry(store.Table{Name: tb.Name, Spec: spec})
		if err != nil {
			if e.bad == nil {
				t.Fatalf("Decode failed (%v), decodeEntry did not", err)
			}
			return
		}
		if e.bad != nil {
			t.Fatalf("Decode took it, decodeEntry did not: %v", e.bad)
		}
		if tb.Partitions < 1 || tb.Partitions > HardMaxTablePartitions {
			t.Fatalf("took an entry of %d partitions", tb.Partitions)
		}
		b, err := tb.encode()
		if err != nil {
			t.Fatal(err)
		}
		again, err := Decode(b)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if !again.sameDefinition(tb) || !again.CreatedAt.Equal(tb.CreatedAt) || again.State != tb.State ||
			again.WideWindow != tb.WideWindow || !again.WideUntil.Equal(tb.WideUntil) {
			t.Fatalf("round trip changed the definition:\n%+v\n%+v", tb, again)
		}
	})
}
