// Package dlq is the wire format of a table's dead-letter queue: the topic
// wail.dlq.<table> (one partition, on the same log as the event bus) holds
// DeadLetterRecords (api/wail/v1/wail.proto), each a dead letter (intents
// the resolver settled without an event, and why), the resolution of an
// earlier one (redriven or dropped by an operator), or a claim on one (a
// sink's redrive sending it: fold.go).
//
// Record key: the row key for a dead letter of a key; "gap/<partition>" for
// a retention gap; empty for a resolution or a claim. Value: the
// DeadLetterRecord in protobuf binary. A dead letter is identified by its
// offset in the topic. The topic is never compacted: a key can be
// dead-lettered more than once.
//
// Besides the wire format: Queue reads a topic as dead-letter entries
// (fold.go, queue.go: list, get, page; bounded memory), and settles them
// (settle.go: redrive, drop, and the settling of GAP letters by a table
// reconcile), with package reconcile doing the resolving again.
package dlq

import (
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// Partitions is the partition count of every dead-letter topic.
const Partitions = 1

// Topic is the dead-letter topic of a table.
func Topic(table string) string { return "wail.dlq." + table }

// ErrInvalid: bytes that are not a well-formed DeadLetterRecord.
var ErrInvalid = errors.New("invalid dead-letter record")

// LetterRecord returns the log record of a dead letter.
func LetterRecord(l *wailv1.DeadLetter) (*intentlog.Record, error) {
	if err := checkLetter(l); err != nil {
		return nil, err
	}
	v, err := proto.Marshal(&wailv1.DeadLetterRecord{Entry: &wailv1.DeadLetterRecord_Letter{Letter: l}})
	if err != nil {
		return nil, fmt.Errorf("dlq: encode: %w", err)
	}
	key := l.Key
	if l.Kind == wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP {
		key = []byte("gap/" + strconv.Itoa(int(l.Partition)))
	}
	return &intentlog.Record{Key: key, Value: v}, nil
}

// ResolutionRecord returns the log record of a resolution.
func ResolutionRecord(r *wailv1.DeadLetterResolution) (*intentlog.Record, error) {
	if err := checkResolution(r); err != nil {
		return nil, err
	}
	return keyless(&wailv1.DeadLetterRecord{Entry: &wailv1.DeadLetterRecord_Resolution{Resolution: r}})
}

// ClaimRecord returns the log record of a claim.
func ClaimRecord(c *wailv1.DeadLetterClaim) (*intentlog.Record, error) {
	if err := checkClaim(c); err != nil {
		return nil, err
	}
	return keyless(&wailv1.DeadLetterRecord{Entry: &wailv1.DeadLetterRecord_Claim{Claim: c}})
}

// keyless returns the record of a resolution or a claim (no key).
func keyless(m *wailv1.DeadLetterRecord) (*intentlog.Record, error) {
	v, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("dlq: encode: %w", err)
	}
	return &intentlog.Record{Key: []byte{}, Value: v}, nil
}

// Decode decodes and checks the value of a dead-letter record.
func Decode(value []byte) (*wailv1.DeadLetterRecord, error) {
	var m wailv1.DeadLetterRecord
	if err := proto.Unmarshal(value, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	switch e := m.Entry.(type) {
	case *wailv1.DeadLetterRecord_Letter:
		if err := checkLetter(e.Letter); err != nil {
			return nil, err
		}
	case *wailv1.DeadLetterRecord_Resolution:
		if err := checkResolution(e.Resolution); err != nil {
			return nil, err
		}
	case *wailv1.DeadLetterRecord_Claim:
		if err := checkClaim(e.Claim); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: neither a letter, a resolution nor a claim", ErrInvalid)
	}
	return &m, nil
}

func checkLetter(l *wailv1.DeadLetter) error {
	switch {
	case l == nil:
		return fmt.Errorf("%w: no letter", ErrInvalid)
	case l.Table == "":
		return fmt.Errorf("%w: no table", ErrInvalid)
	case l.Partition < 0:
		return fmt.Errorf("%w: partition %d", ErrInvalid, l.Partition)
	}
	switch l.Kind {
	case wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP:
		if l.GapStartOffset < 0 || l.GapEndOffset <= l.GapStartOffset {
			return fmt.Errorf("%w: gap [%d, %d)", ErrInvalid, l.GapStartOffset, l.GapEndOffset)
		}
	case wailv1.DeadLetterKind_DEAD_LETTER_KIND_PUBLISH, wailv1.DeadLetterKind_DEAD_LETTER_KIND_READ:
		switch {
		case len(l.Key) == 0:
			return fmt.Errorf("%w: no key", ErrInvalid)
		case len(l.Intents) == 0:
			return fmt.Errorf("%w: no intents", ErrInvalid)
		case len(l.IntentOffsets) != len(l.Intents):
			return fmt.Errorf("%w: %d intents but %d offsets", ErrInvalid, len(l.Intents), len(l.IntentOffsets))
		}
	case wailv1.DeadLetterKind_DEAD_LETTER_KIND_SINK:
		switch {
		case len(l.Key) == 0:
			return fmt.Errorf("%w: no key", ErrInvalid)
		case l.Sink == "":
			return fmt.Errorf("%w: a sink's letter names no sink", ErrInvalid)
		case l.Event == nil:
			return fmt.Errorf("%w: a sink's letter has no event", ErrInvalid)
		case l.EventOffset < -1:
			return fmt.Errorf("%w: event offset %d", ErrInvalid, l.EventOffset)
		case len(l.Intents) > 0 || len(l.IntentOffsets) > 0:
			return fmt.Errorf("%w: a sink's letter has no intents", ErrInvalid)
		}
	case wailv1.DeadLetterKind_DEAD_LETTER_KIND_SNAPSHOT:
		switch {
		case len(l.Key) == 0:
			return fmt.Errorf("%w: no key", ErrInvalid)
		case len(l.Intents) > 0 || len(l.IntentOffsets) > 0:
			return fmt.Errorf("%w: a snapshot's letter has no intents", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: kind %v", ErrInvalid, l.Kind)
	}
	return nil
}

func checkResolution(r *wailv1.DeadLetterResolution) error {
	switch {
	case r == nil:
		return fmt.Errorf("%w: no resolution", ErrInvalid)
	case r.Offset < 0:
		return fmt.Errorf("%w: resolution of offset %d", ErrInvalid, r.Offset)
	case r.Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN && r.Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED &&
		r.Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_SUPERSEDED:
		return fmt.Errorf("%w: action %v", ErrInvalid, r.Action)
	}
	return nil
}

func checkClaim(c *wailv1.DeadLetterClaim) error {
	switch {
	case c == nil:
		return fmt.Errorf("%w: no claim", ErrInvalid)
	case c.Offset < 0:
		return fmt.Errorf("%w: claim of offset %d", ErrInvalid, c.Offset)
	case c.Id == "":
		return fmt.Errorf("%w: a claim without an id", ErrInvalid)
	}
	return nil
}
