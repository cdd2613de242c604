package mysql

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

// TestApplyOverOnePacket: one Apply of more bytes than one packet takes
// (70 rows of 1 MiB values: over the 64 MiB the driver and services.sh's
// server allow; the proxy merges concurrent writes into an Apply of up to
// proxy.max_merge_bytes) is written. Up to chunkRows rows go in one
// statement whatever their size; that works because the driver sends a
// large parameter of a prepared statement in packets of its own
// (COM_STMT_SEND_LONG_DATA): only one value must fit max_allowed_packet.
func TestApplyOverOnePacket(t *testing.T) {
	s := openFresh(t, 0)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	muts := make([]store.Mutation, 70)
	for i := range muts {
		muts[i] = store.Mutation{Key: fmt.Appendf(nil, "k%d", i), Value: bytes.Repeat([]byte{byte(i)}, 1<<20), Version: uint64(i + 1)}
	}
	outs, err := s.Apply(ctx, "big", muts)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range outs {
		if !o.Applied {
			t.Fatalf("row %d not applied: %+v", i, o)
		}
	}
	for _, i := range []int{0, 35, 69} {
		row, found, err := s.Get(ctx, "big", muts[i].Key, 0)
		if err != nil || !found || row.Version != muts[i].Version || !bytes.Equal(row.Value, muts[i].Value) {
			t.Fatalf("row %d: found %v, version %d, %d bytes, err %v", i, found, row.Version, len(row.Value), err)
		}
	}
}
