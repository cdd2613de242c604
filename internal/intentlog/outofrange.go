package intentlog

import (
	"context"
	"fmt"
	"time"
)

// OutOfRangeTries bounds the answers out of range in a row for a position
// within the log's bounds (a Kafka leader not caught up yet, as right
// after a leader election) before a reader gives up.
const OutOfRangeTries = 5

// Placement is where a position the log answered out of range
// (ErrOffsetOutOfRange) stands among the log's bounds read after the
// answer.
type Placement int

const (
	// Within the bounds: the answer was transient; the same position is
	// read again.
	Within Placement = iota
	// BelowStart: retention removed the offsets from the position up to
	// the log's start before the reader read them; they are gone for
	// every reader.
	BelowStart
	// PastEnd: the log lost its tail (an unclean Kafka leader election, a
	// repair of the embedded log's tail) and new events take those
	// offsets again.
	PastEnd
)

// OutOfRange is a position's placement and the bounds it was judged by:
// Start the first retained offset, End the end offset.
type OutOfRange struct {
	Placement
	Start, End int64
}

// Bounder reads a partition's bounds (Log.Bounds).
type Bounder interface {
	Bounds(ctx context.Context, topic string, partition int32) (start, end int64, err error)
}

// PlaceOutOfRange says where a reader of topic's partition p stands after
// the log answered its position pos out of range (cause) for the tries-th
// time in a row, from the log's bounds now. Below the start or past the
// end it answers at once, and the reader decides (skip to the start and
// say so, rewind, or fail). Within the bounds the answer was transient:
// it waits tries × 100 ms before the reader tries pos again (ctx's error
// if ctx ends first), and fails once tries reaches OutOfRangeTries.
func PlaceOutOfRange(ctx context.Context, b Bounder, topic string, p int32, pos int64, cause error, tries int) (OutOfRange, error) {
	start, end, err := b.Bounds(ctx, topic, p)
	if err != nil {
		return OutOfRange{}, fmt.Errorf("read %s/%d at %d: %w; bounds: %w", topic, p, pos, cause, err)
	}
	o := OutOfRange{Start: start, End: end}
	switch {
	case pos > end:
		o.Placement = PastEnd
		return o, nil
	case pos < start:
		o.Placement = BelowStart
		return o, nil
	case tries >= OutOfRangeTries:
		return o, fmt.Errorf("read %s/%d at %d: answered out of range %d times in a row, within the log's bounds [%d, %d]: %w",
			topic, p, pos, tries, start, end, cause)
	}
	t := time.NewTimer(time.Duration(tries) * 100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return o, nil
	case <-ctx.Done():
		return o, ctx.Err()
	}
}
