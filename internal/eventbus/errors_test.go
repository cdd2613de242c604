package eventbus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
)

// TestBusErrors: each failure of the log comes back wrapped once, saying
// what the bus was doing and on which table and partition.
func TestBusErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	down := errors.New("log down")
	log := newMemLog()
	b := New(log)
	if b.Log() != log {
		t.Fatal("Log() is not the log under the bus")
	}
	log.createErr = down
	if err := b.CreateTable(ctx, "t", 1, time.Hour); !errors.Is(err, down) || err.Error() != "eventbus: create t: log down" {
		t.Errorf("CreateTable: %v", err)
	}
	log.createErr = nil
	if err := b.CreateTable(ctx, "t", 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	ev := []intent.Event{{Table: "t", Key: []byte("k"), Op: intent.Upsert, Version: 1}}
	log.appendErr = down
	if err := b.Publish(ctx, "t", ev); !errors.Is(err, down) || err.Error() != "eventbus: publish t: log down" {
		t.Errorf("Publish: %v", err)
	}
	log.appendErr = nil
	bad := []intent.Event{ev[0], {Table: "t\xff", Key: []byte("j"), Op: intent.Upsert, Version: 2}}
	if err := b.Publish(ctx, "t", bad); !errors.Is(err, ErrEncode) || !strings.Contains(err.Error(), `key "j" version 2`) {
		t.Errorf("Publish of an event that cannot be encoded: %v", err)
	}
	if _, end, _ := log.Bounds(ctx, Topic("t"), 0); end != 0 {
		t.Errorf("a batch with an event that cannot be encoded was published in part (%d records)", end)
	}
	if err := b.Publish(ctx, "t", ev); err != nil {
		t.Fatal(err)
	}
	if end, err := b.End(ctx, "t", 0); err != nil || end != 1 {
		t.Errorf("End = %d, %v; want 1", end, err)
	}

	log.boundsErr = down
	if _, err := b.End(ctx, "t", 0); !errors.Is(err, down) || err.Error() != "eventbus: scan t/0: log down" {
		t.Errorf("End: %v", err)
	}
	if got, err := b.LastVersions(ctx, "t", 0, time.Time{}); !errors.Is(err, down) || got == nil {
		t.Errorf("LastVersions, bounds unknown: %v, %v; want the error and an empty map", got, err)
	}
	if got, err := b.LastVersionsOf(ctx, "t", 0, 0, nil); !errors.Is(err, down) || got.Last != nil {
		t.Errorf("LastVersionsOf, bounds unknown: %+v, %v", got, err)
	}
	log.boundsErr, log.timeErr = nil, down
	if got, err := b.LastVersions(ctx, "t", 0, time.Time{}); !errors.Is(err, down) || err.Error() != "eventbus: scan t/0: log down" || got == nil {
		t.Errorf("LastVersions, offset unknown: %v, %v", got, err)
	}
	log.timeErr, log.readerErr = nil, down
	if _, err := b.LastVersions(ctx, "t", 0, time.Time{}); !errors.Is(err, down) || err.Error() != "eventbus: scan t/0: log down" {
		t.Errorf("LastVersions, no reader: %v", err)
	}
	log.readerErr, log.nextErr = nil, down
	if _, err := b.LastVersions(ctx, "t", 0, time.Time{}); !errors.Is(err, down) || err.Error() != "eventbus: scan t/0 at 0: log down" {
		t.Errorf("LastVersions, a read that fails: %v", err)
	}
}

// TestLastVersionsSince: the scan starts at the offset of since and reads
// to the end, keeping each key's highest version.
func TestLastVersionsSince(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := newMemLog()
	b := New(log)
	if err := b.CreateTable(ctx, "t", 1, 0); err != nil {
		t.Fatal(err)
	}
	evs := []intent.Event{
		{Table: "t", Key: []byte("a"), Op: intent.Upsert, Version: 1},
		{Table: "t", Key: []byte("b"), Op: intent.Upsert, Version: 2},
		{Table: "t", Key: []byte("a"), Op: intent.Upsert, Version: 4},
		{Table: "t", Key: []byte("a"), Op: intent.Upsert, Version: 3}, // lower: kept out
		{Table: "t", Key: []byte("c"), Op: intent.Delete, Version: 5},
	}
	if err := b.Publish(ctx, "t", evs); err != nil {
		t.Fatal(err)
	}
	since := time.Unix(1000, 0)
	log.timeOffset = 1
	got, err := b.LastVersions(ctx, "t", 0, since)
	if err != nil || len(got) != 3 || got["a"] != 4 || got["b"] != 2 || got["c"] != 5 {
		t.Fatalf("LastVersions = %v, %v; want a:4 b:2 c:5", got, err)
	}
	if !log.askedTime.Equal(since) {
		t.Errorf("asked the offset of %v, want %v", log.askedTime, since)
	}
	log.timeOffset = 6 // the end: nothing to read
	if got, err := b.LastVersions(ctx, "t", 0, since); err != nil || len(got) != 0 {
		t.Fatalf("from the end: %v, %v", got, err)
	}
}
