package client

import (
	"errors"

	"connectrpc.com/connect"
)

// A group member can lose what it delivers while it still runs: its lease
// expired (it held events unacknowledged too long), its stream broke, or
// its partition moved on after a drain that took the lease. The server
// then gives the partitions to others (or to this member again, under new
// epochs) from the committed offset, and refuses this member's
// acknowledgements of what it lost. Events of the lost assignment may
// still be on their way to it (in the connection's buffers, ahead of the
// stream's end): handed out, they would be applied after the next owner
// applied the key's newer events. Once an acknowledgement says so
// (refused), the consumer hands out no more of them: a partition refused
// at an epoch, none of that epoch or an earlier one; a member that is not
// one any more, nothing more of its stream, which it ends, and it joins
// again. As a
// Kafka consumer drops what it fetched of a generation whose commit
// failed. What Next returned before the refusal is the application's to
// guard (apply an event only above the version it holds: README).

// lostAssignments is what the member lost on its stream in place (under
// Consumer.mu).
type lostAssignments struct {
	member bool             // not a member any more: the whole stream
	parts  map[int32]uint64 // partitions lost, at these epochs and every earlier one
}

// errMemberLost ends a member's stream once an acknowledgement said it is
// not a member any more (Next joins again).
var errMemberLost = connect.NewError(connect.CodeAborted,
	errors.New("the server no longer counts this member in the group (an acknowledgement was refused: its lease expired or its stream dropped); joining again"))

// lose records that an acknowledgement of m was refused: its partition
// at its epoch (member: the whole membership of its stream) was lost. A
// refusal of an earlier stream's event says nothing of the stream in
// place. Losing the membership ends the stream, so that a Next waiting
// on it joins again.
func (c *Consumer) lose(m Message, member bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.group == nil || m.stream != c.snap.stream {
		return
	}
	if member {
		if !c.lost.member {
			c.lost.member = true
			c.stop()
		}
		return
	}
	if c.lost.parts == nil {
		c.lost.parts = map[int32]uint64{}
	}
	// Epochs only grow: lost at one, a partition was lost at the earlier
	// ones too (a refusal of an earlier event, acknowledged late, must
	// not bring a later epoch's events back).
	c.lost.parts[m.Partition] = max(c.lost.parts[m.Partition], m.epoch)
}

// isLost reports whether m belongs to what the member lost.
func (c *Consumer) isLost(m Message) bool {
	if m.Snapshot || c.cfg.Group == "" {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.stream != c.snap.stream {
		return true
	}
	if c.lost.member {
		return true
	}
	e, ok := c.lost.parts[m.Partition]
	return ok && m.epoch <= e
}

// memberLost reports whether the stream in place lost its membership.
func (c *Consumer) memberLost() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost.member
}
