package eventbus

import (
	"errors"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestGroupResetRefusesAnAfterVersion: a group has no version filter, so
// a reset to a start that carries one ("v<N>", or the cursor of a stream
// started at one) cannot be honoured exactly: its members would get the
// events of version N or below that the cursor's stream skips. It is
// refused, saying what to use instead; a cursor without one is taken.
func TestGroupResetRefusesAnAfterVersion(t *testing.T) {
	t.Parallel()
	svc, bus := groupService(t) // v1 and v2 of key k at offsets 0, 1
	ctx := t.Context()
	p := intentlog.Partition([]byte("k"), 2)
	upserts(t, bus, 5, 3, 6) // offsets 2, 3, 4: publish order is not version order
	offsets := make([]int64, 2)
	offsets[p] = 3 // after v5, in a stream from "v4": v3 at offset 3 is skipped
	withAfter := Cursor{Table: "t", Offsets: offsets, AfterVersion: 4}.String()
	for _, to := range []string{withAfter, "v4"} {
		_, err := svc.ResetGroup(ctx, "t", "g", to)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "version") {
			t.Errorf("reset to %.12s: %v, want ErrInvalid saying a group has no version filter", to, err)
		}
	}
	if _, err := svc.ResetGroup(ctx, "t", "g", Cursor{Table: "t", Offsets: offsets}.String()); err != nil {
		t.Fatalf("reset to a cursor without an after-version: %v", err)
	}
	sess, err := svc.JoinGroup(ctx, "t", "g", "m", "", GroupSnapshot{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Leave()
	var got group.Message
	for got.Records == nil {
		if got, err = sess.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got.Partition != p || got.Records[0].Offset != 3 {
		t.Errorf("first record of partition %d at offset %d, want %d at 3", got.Partition, got.Records[0].Offset, p)
	}
}
