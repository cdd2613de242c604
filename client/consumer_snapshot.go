package client

import (
	"context"
	"fmt"

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

// snapshotAcks is the group snapshot on the stream in place (under
// Consumer.mu).
type snapshotAcks struct {
	stream uint64 // counts the group streams opened
	rows   int64  // rows received
	acked  int64  // the highest row acknowledged
	ended  bool   // the server sent snapshot_end
	id     uint64 // its snapshot_id, which the acknowledgement carries
	sent   bool   // the end's acknowledgement went out
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
	send := c.snapDueLocked()
	c.mu.Unlock()
	if send {
		return c.ackSnapshotEnd(ctx, id)
	}
	return nil
}

// ackSnapshotRow acknowledges m, a row of the snapshot.
func (c *Consumer) ackSnapshotRow(ctx context.Context, m Message) error {
	c.mu.Lock()
	if m.stream != c.snap.stream || c.group == nil {
		c.mu.Unlock()
		return fmt.Errorf("%w: the stream of this snapshot row ended before the snapshot's end was committed: the snapshot is taken again", ErrAckRefused)
	}
	c.snap.acked = max(c.snap.acked, m.row)
	send, id := c.snapDueLocked(), c.snap.id
	c.mu.Unlock()
	if send {
		return c.ackSnapshotEnd(ctx, id)
	}
	return nil
}

// snapDueLocked says whether the end's acknowledgement is due now (and
// marks it sent: once per stream).
func (c *Consumer) snapDueLocked() bool {
	if !c.snap.ended || c.snap.sent || c.snap.acked < c.snap.rows {
		return false
	}
	c.snap.sent = true
	return true
}

// ackSnapshotEnd tells the server that every row of snapshot id was
// processed (the server refuses it for another snapshot of the member: a
// stream of this consumer that ended, or another consumer's). If it fails,
// the server ends the stream once its lease is over (Next:
// ErrSnapshotInterrupted) and the snapshot is taken again.
func (c *Consumer) ackSnapshotEnd(ctx context.Context, id uint64) error {
	_, err := c.events.Ack(ctx, connect.NewRequest(&wailv1.AckRequest{Table: c.cfg.Table, Group: c.cfg.Group, Member: c.cfg.Member,
		SnapshotEnd: true, SnapshotId: id}))
	if connect.CodeOf(err) == connect.CodeFailedPrecondition {
		return fmt.Errorf("%w: %w", ErrAckRefused, err)
	}
	if err != nil {
		return fmt.Errorf("consumer of %s: acknowledge the snapshot's end: %w", c.cfg.Table, err)
	}
	return nil
}
