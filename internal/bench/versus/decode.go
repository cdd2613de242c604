package versus

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
)

// Event is one change event as the consumer sees it, whatever produced it.
type Event struct {
	Key []byte
	// Token orders the states of a key in the pipeline's own order: wail's
	// version, Debezium's transaction id.
	Token uint64
	// WriteID is the bench's write id in the first 8 bytes of the value (0
	// for a delete, whose event carries no value).
	WriteID uint64
	Delete  bool
}

// Decoder turns a record of a pipeline's topic into an event; skip is true
// for records that are not events (tombstones).
type Decoder func(key, value []byte, headers []kgo.RecordHeader) (ev Event, skip bool, err error)

// writeID reads the write id the bench puts in the first 8 bytes of values.
func writeID(v []byte) uint64 {
	if len(v) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// putWriteID stamps id into the first 8 bytes of v (a value of at least 8
// bytes).
func putWriteID(v []byte, id uint64) { binary.BigEndian.PutUint64(v, id) }

// DecodeWail decodes a record of wail.events.<table>: key = row key,
// headers wail.version and wail.op, value = wail.v1.ChangeEvent (see
// internal/eventbus). A nil value is the tombstone after a delete.
func DecodeWail(key, value []byte, headers []kgo.RecordHeader) (Event, bool, error) {
	if value == nil {
		return Event{}, true, nil
	}
	var ver, op []byte
	for _, h := range headers {
		switch h.Key {
		case eventbus.HeaderVersion:
			ver = h.Value
		case eventbus.HeaderOp:
			op = h.Value
		}
	}
	if ver == nil || op == nil {
		return Event{}, false, errors.New("wail event: missing wail.version or wail.op header")
	}
	v, err := strconv.ParseUint(string(ver), 10, 64)
	if err != nil {
		return Event{}, false, fmt.Errorf("wail event: version header %q: %w", ver, err)
	}
	ev := Event{Key: key, Token: v}
	switch string(op) {
	case intent.Upsert.String():
		e, err := intent.UnmarshalEvent(value)
		if err != nil {
			return Event{}, false, fmt.Errorf("wail event: %w", err)
		}
		ev.WriteID = writeID(e.Value)
	case intent.Delete.String():
		ev.Delete = true
	default:
		return Event{}, false, fmt.Errorf("wail event: op header %q", op)
	}
	return ev, false, nil
}

// dbzEnvelope is a Debezium change event in JSON, with its schema (the
// JsonConverter's default) or without.
type dbzEnvelope struct {
	Payload *dbzPayload `json:"payload"`
	dbzPayload
}

type dbzPayload struct {
	Op     string    `json:"op"`
	Before *dbzRow   `json:"before"`
	After  *dbzRow   `json:"after"`
	Source dbzSource `json:"source"`
}

// dbzRow is a row of the bench table: k text, v bytea (base64 in JSON, the
// connector's default binary.handling.mode=bytes).
type dbzRow struct {
	K *string `json:"k"`
	V []byte  `json:"v"`
}

type dbzSource struct {
	TxID *uint64 `json:"txId"`
}

// DecodeDebezium decodes a record of Debezium's <prefix>.public.<table>
// topic: the JSON change event of one row of the bench table (k, v). Creates
// (c), updates (u) and snapshot reads (r) carry the row in "after", deletes
// (d) the key in "before"; the token is source.txId. A nil value is the
// tombstone after a delete.
func DecodeDebezium(_, value []byte, _ []kgo.RecordHeader) (Event, bool, error) {
	if value == nil {
		return Event{}, true, nil
	}
	var env dbzEnvelope
	if err := json.Unmarshal(value, &env); err != nil {
		return Event{}, false, fmt.Errorf("debezium event: %w", err)
	}
	p := &env.dbzPayload
	if env.Payload != nil {
		p = env.Payload
	}
	if p.Source.TxID == nil {
		return Event{}, false, errors.New("debezium event: no source.txId")
	}
	ev := Event{Token: *p.Source.TxID}
	row := p.After
	switch p.Op {
	case "c", "u", "r":
	case "d":
		row, ev.Delete = p.Before, true
	default:
		return Event{}, false, fmt.Errorf("debezium event: op %q", p.Op)
	}
	if row == nil || row.K == nil {
		return Event{}, false, fmt.Errorf("debezium event: op %q without the row's key", p.Op)
	}
	ev.Key = []byte(*row.K)
	if !ev.Delete {
		ev.WriteID = writeID(row.V)
	}
	return ev, false, nil
}
