package client

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// A group member acknowledges the snapshot it takes (ConsumeRequest.
// ack_snapshot): after the last row the server sends snapshot_end and
// commits the snapshot's end as the group's positions only once the
// member answered it, which it does once every row was acknowledged
// (Ack, in any order of calls: a row's acknowledgement covers the rows
// before it). A member that dies first leaves the group without
// positions: the next member takes the snapshot again.

// snapEndAttempts bounds the attempts to acknowledge a snapshot's end.
const snapEndAttempts = 4

// snapshotAcks is the group snapshot on the stream in place (under
// Consumer.mu).
type snapshotAcks struct {
	stream uint64 // counts the group streams opened
	rows   int64  // rows received
	acked  int64  // the highest row acknowledged
	ended  bool   // the server sent snapshot_end
	id     uint64 // its snapshot_id, which the acknowledgement carries
	sent   bool   // the end's acknowledgement went out
	// told: this member acknowledged a snapshot's end (or tried to: the
	// server may have taken it and lost the answer), so the server may
	// have committed it. Kept across the member's streams until one sends
	// a message other than a snapshot row: a stream that drops after the
	// end was told is joined again, and the next stream says whether the
	// snapshot is over (the member's join) or taken again (its rows).
	// A refusal of every acknowledgement of the end sent on the stream
	// (the server aborted the snapshot: past the group lease, say) says
	// it was not taken: told is false again.
	told bool
	// toldID is the id of the end told (with told): the next stream's
	// request carries it (ConsumeRequest.told_snapshot_id), and the
	// member's join answers whose snapshot's end the group's positions
	// are (committed_snapshot_id).
	toldID uint64
	// taken: an acknowledgement of this stream's end may have been taken
	// (answered, or its answer lost): a refusal of a later one (the end
	// was acknowledged already) says nothing.
	taken bool
}

// snapRow numbers a snapshot row just received.
func (c *Consumer) snapRow() (row int64, stream uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.snap.rows++
	return c.snap.rows, c.snap.stream
}

// snapshotEnded takes the server's snapshot_end of snapshot id: the end
// is acknowledged at once if every row was (or when the last is:
// ackSnapshotRow).
func (c *Consumer) snapshotEnded(ctx context.Context, id uint64) error {
	c.mu.Lock()
	c.snap.ended, c.snap.id = true, id
	send, stream := c.snapDueLocked(), c.snap.stream
	c.mu.Unlock()
	if send {
		return c.ackSnapshotEnd(ctx, stream, id)
	}
	return nil
}

// ackSnapshotRow acknowledges m, a row of the snapshot.
func (c *Consumer) ackSnapshotRow(ctx context.Context, m Message) error {
	c.mu.Lock()
	if m.stream != c.snap.stream || c.group == nil {
		c.mu.Unlock()
		return fmt.Errorf("%w: the stream of this snapshot row ended (unless its end was committed before, the snapshot is taken again)", ErrAckRefused)
	}
	c.snap.acked = max(c.snap.acked, m.row)
	send, id := c.snapDueLocked(), c.snap.id
	c.mu.Unlock()
	if send {
		return c.ackSnapshotEnd(ctx, m.stream, id)
	}
	return nil
}

// snapshotTold reports whether this member told the server a snapshot's
// end (the server may have committed it), and which (its id), and forgets
// it unless again (a snapshot row or end: the snapshot taken again): a
// stream's other message (the member's join) says the snapshot is over.
func (c *Consumer) snapshotTold(again bool) (bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	told, id := c.snap.told, c.snap.toldID
	if !again {
		c.snap.told, c.snap.toldID = false, 0
	}
	return told, id
}

// toldSnapshotID is the id of the snapshot's end this member told on a
// stream that dropped before its join (0: none): the request of the next
// stream carries it.
func (c *Consumer) toldSnapshotID() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.snap.told {
		return 0
	}
	return c.snap.toldID
}

// snapDueLocked says whether the end's acknowledgement is due now (and
// marks it sent, once per stream, and the end told: in one hold of
// Consumer.mu with the marks, so that a drop of the stream (midSnapshot)
// sees either the end told or no acknowledgement of it ever going out).
func (c *Consumer) snapDueLocked() bool {
	if !c.snap.ended || c.snap.sent || c.snap.acked < c.snap.rows {
		return false
	}
	c.snap.sent, c.snap.told, c.snap.toldID = true, true, c.snap.id
	return true
}

// snapshotDropped reports whether a group member's stream that dropped
// did so during its snapshot: the member had a snapshot row or end last
// and did not tell the end. If so, the end is never acknowledged from
// now (a late Ack of the last row): a server that has not seen the drop
// yet would commit it, though Next fails with ErrSnapshotInterrupted,
// which asks to discard the snapshot's rows.
func (c *Consumer) snapshotDropped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.rc.inSnapshot || c.snap.told {
		return false
	}
	c.snap.sent = true
	return true
}

// ackSnapshotEnd tells the server that every row of snapshot id was
// processed (the server refuses it for another snapshot of the member: a
// stream of this consumer that ended, or another consumer's). If it fails,
// the server ends the stream once its lease is over (Next:
// ErrSnapshotInterrupted) and the snapshot is taken again, unless it is
// sent again before: a failure other than a refusal leaves it due, so that
// the next Ack of a row of the stream (the failed one again) resends it.
func (c *Consumer) ackSnapshotEnd(ctx context.Context, stream, id uint64) error {
	var err error
	for n := 1; ; n++ {
		_, err = c.events.Ack(ctx, connect.NewRequest(&wailv1.AckRequest{Table: c.cfg.Table, Group: c.cfg.Group, Member: c.cfg.Member,
			SnapshotEnd: true, SnapshotId: id}))
		if connect.CodeOf(err) != connect.CodeFailedPrecondition {
			c.mu.Lock()
			if c.snap.stream == stream {
				c.snap.taken = true
			}
			c.mu.Unlock()
		}
		if err == nil || n == snapEndAttempts || !retriable(connect.CodeOf(err)) {
			break
		}
		// A short outage (the server restarting ends the stream too) is
		// retried a few times: the server waits a group lease for it.
		t := time.NewTimer(backoff(50*time.Millisecond, time.Second, n))
		select {
		case <-ctx.Done():
			t.Stop()
			err = ctx.Err()
		case <-t.C:
			continue
		}
		break
	}
	if connect.CodeOf(err) == connect.CodeFailedPrecondition {
		c.mu.Lock()
		if c.snap.stream == stream && !c.snap.taken {
			// Not taken: the server cannot have committed the end (it
			// aborted the snapshot), and a drop of the stream is one
			// during the snapshot (midSnapshot).
			c.snap.told, c.snap.toldID = false, 0
		}
		c.mu.Unlock()
		return fmt.Errorf("%w: %w", ErrAckRefused, err)
	}
	if err != nil {
		c.mu.Lock()
		if c.snap.stream == stream {
			c.snap.sent = false
		}
		c.mu.Unlock()
		return fmt.Errorf("consumer of %s: acknowledge the snapshot's end: %w", c.cfg.Table, err)
	}
	return nil
}
