package group

import (
	"context"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// marksReader is an intentlog.EpochReader that answers EpochBefore as the
// Kafka reader does: the epoch of the last mark below the offset, that
// is, of the last record it read there, however far past it the offset
// asked is (-1 below its first mark).
type marksReader struct{ marks [][2]int64 } // offset, epoch, in offset order

func (marksReader) Next(context.Context) ([]intentlog.Record, error) { return nil, nil }
func (marksReader) Position() int64                                  { return 0 }
func (marksReader) Close() error                                     { return nil }
func (r marksReader) EpochBefore(offset int64) int32 {
	for i := len(r.marks) - 1; i >= 0; i-- {
		if r.marks[i][0] < offset {
			return int32(r.marks[i][1])
		}
	}
	return -1
}

// TestLeaderEpochOfTheGrantsReader: the leader epoch committed with an
// acknowledgement is the one of the event before its offset as the
// reader of the acknowledged grant read it, and unknown (-1, the commit
// not validated) when this session has no reader of that grant (yet): a
// reader of an earlier grant of the partition, stopped, answers the epoch
// of the last record it read for any offset past it, records it never
// read (a leader elected since gave them another epoch, and a start at
// the committed offset with the stale one would find the log diverged).
func TestLeaderEpochOfTheGrantsReader(t *testing.T) {
	s := &Session{}
	if e := s.leaderEpoch(0, 1, 5); e != -1 {
		t.Fatalf("no reader: epoch %d, want -1", e)
	}
	s.setReader(0, 1, marksReader{marks: [][2]int64{{0, 3}, {4, 7}}}, false) // offsets 0-3 at epoch 3, 4 at 7
	for next, want := range map[int64]int32{0: -1, 1: 3, 4: 3, 5: 7} {
		if e := s.leaderEpoch(0, 1, next); e != want {
			t.Errorf("grant 1, next %d: epoch %d, want %d (the event before it read at that epoch)", next, e, want)
		}
	}
	if e := s.leaderEpoch(1, 1, 5); e != -1 {
		t.Errorf("another partition: epoch %d, want -1", e)
	}
	// Granted again (epoch 2): until its reader starts, the stopped reader
	// of grant 1 is not asked.
	if e := s.leaderEpoch(0, 2, 9); e != -1 {
		t.Errorf("grant 2 before its reader started: epoch %d, want -1 (not the epoch grant 1's reader read offset 4 at)", e)
	}
	s.setReader(0, 2, marksReader{marks: [][2]int64{{8, 9}}}, false)
	if e := s.leaderEpoch(0, 2, 9); e != 9 {
		t.Errorf("grant 2, next 9: epoch %d, want 9", e)
	}
	if e := s.leaderEpoch(0, 1, 5); e != -1 {
		t.Errorf("grant 1 once grant 2's reader started: epoch %d, want -1", e)
	}
	// A reader of grant 2 that reads again what the one before it dropped
	// (from 20 on): below its start the one before answers, whose
	// messages may still be unacknowledged.
	s.setReader(0, 2, marksReader{marks: [][2]int64{{20, 11}}}, true)
	for next, want := range map[int64]int32{9: 9, 21: 11} {
		if e := s.leaderEpoch(0, 2, next); e != want {
			t.Errorf("grant 2 read again from 20, next %d: epoch %d, want %d", next, e, want)
		}
	}
}
