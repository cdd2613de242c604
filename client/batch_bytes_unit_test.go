package client

import (
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestCheckLeavesRoomForTheHead: a write that fits MaxBatchBytes but not
// with the batch's seq and stamp_before (headBytes) is refused unsent,
// invalid_argument: sent, its batch would be over the cap at each try.
func TestCheckLeavesRoomForTheHead(t *testing.T) {
	m := &wailv1.Mutation{Table: "t", Key: []byte("k"), Value: make([]byte, 200), Op: wailv1.Op_OP_UPSERT}
	size := protowire.SizeTag(2) + protowire.SizeBytes(proto.Size(m))
	for _, tc := range []struct {
		max int
		ok  bool
	}{{size + headBytes, true}, {size + headBytes - 1, false}, {size, false}} {
		p := &Producer{cfg: ProducerConfig{MaxBatchBytes: tc.max}.withDefaults()}
		got, err := p.check(m)
		var werr *WriteError
		switch {
		case tc.ok && (err != nil || got != size):
			t.Errorf("MaxBatchBytes %d: %d, %v; want %d, nil", tc.max, got, err, size)
		case !tc.ok && (!errors.As(err, &werr) || werr.Code != connect.CodeInvalidArgument):
			t.Errorf("MaxBatchBytes %d (a write of %d bytes): %v; want invalid_argument", tc.max, size, err)
		}
	}
}

// TestTakeKeepsTheBatchWithinItsBytes: a batch's writes take at most
// batchBytes, to the byte; the write that would pass it waits for the
// next batch.
func TestTakeKeepsTheBatchWithinItsBytes(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		second int // the size of the second write; the first takes 50
		want   int // writes in the first batch
	}{{50, 2}, {51, 1}} {
		p := &Producer{cfg: ProducerConfig{MaxBatchBytes: 100 + headBytes}.withDefaults()}
		l := &loop{p: p, flights: map[uint64]*flight{}, busy: map[string]bool{}, fence: map[string]time.Time{},
			queued: map[string]int{}, seen: map[string]bool{}}
		for i, size := range []int{50, tc.second} {
			key := string(rune('a' + i))
			l.queue = append(l.queue, &pending{m: &wailv1.Mutation{Table: "t", Key: []byte(key)}, key: "t\x00" + key,
				size: size, at: now.Add(-time.Hour), deadline: now.Add(time.Hour)})
			l.queued["t\x00"+key]++
		}
		if batch, _ := l.take(now, false); len(batch) != tc.want {
			t.Errorf("writes of 50 and %d bytes, batches of 100: the first batch has %d writes, want %d", tc.second, len(batch), tc.want)
		}
	}
}
