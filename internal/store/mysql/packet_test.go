package mysql

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// bigRows gives the store a query timeout for writes and reads of tens of
// MiB on a loaded machine: these tests are of what the store takes, not
// of how fast (the default, 5 s, ran out at load 15).
func bigRows(o *Options) { o.QueryTimeout = time.Minute }

// TestApplyOverOnePacket: one Apply of more bytes than one packet takes
// (70 rows of 1 MiB values: over the 64 MiB the driver and services.sh's
// server allow; the proxy merges concurrent writes into an Apply of up to
// proxy.max_merge_bytes) is written. Up to chunkRows rows go in one
// statement whatever their size; that works because the driver sends a
// large parameter of a prepared statement in packets of its own
// (COM_STMT_SEND_LONG_DATA): only one value must fit max_allowed_packet.
func TestApplyOverOnePacket(t *testing.T) {
	s := openFresh(t, 0, bigRows)
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

// TestReadAtMutationLimit: a row as large as MutationLimit allows
// (len(Key)+len(Value) equal to the server's max_allowed_packet) is
// written, and read back by Get, GetMany (the resolver's read-back) and
// ScanKeys: a row the store takes and then cannot read is an intent that
// never resolves.
func TestReadAtMutationLimit(t *testing.T) {
	s := openFresh(t, 0, bigRows)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "lim"); err != nil {
		t.Fatal(err)
	}
	limit, _ := s.MutationLimit()
	key := bytes.Repeat([]byte{'k'}, 4096)
	m := store.Mutation{Key: key, Value: bytes.Repeat([]byte{'v'}, limit-len(key)), Version: 7}
	outs, err := s.Apply(ctx, "lim", []store.Mutation{m})
	if err != nil || !outs[0].Applied {
		t.Fatalf("Apply of a row at the limit (%d bytes): %+v, %v", limit, outs, err)
	}
	row, found, err := s.Get(ctx, "lim", key, 0)
	if err != nil || !found || row.Version != 7 || len(row.Value) != len(m.Value) {
		t.Errorf("Get of a row at the limit: found %v, version %d, %d bytes, err %v", found, row.Version, len(row.Value), err)
	}
	reads, err := s.GetMany(ctx, "lim", [][]byte{key, []byte("other")}, 0)
	if err != nil || !reads[0].Found || reads[0].Row.Version != 7 || len(reads[0].Row.Value) != len(m.Value) {
		t.Errorf("GetMany of a row at the limit: %v", err)
	}
	kvs, err := s.ScanKeys(ctx, "lim", nil, 10)
	if err != nil || len(kvs) != 1 || kvs[0].Version != 7 {
		t.Errorf("ScanKeys of a row at the limit: %d keys, %v", len(kvs), err)
	}
}
