package intent

import (
	"sync/atomic"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// The hand-written decoders of the two records: generic proto.Unmarshal
// builds the whole message and then copies it into the Go value, one
// allocation per field that holds bytes; the resolver decodes every
// intent and the event streams every event. Here the key and value of a
// record share one copy of their bytes, and a table name equal to the
// last one decoded is not copied again.
//
// Only the common, well-formed case is decoded by hand: on anything else
// (an unknown field, a known field with another wire type, invalid UTF-8,
// a truncated or malformed message) they report false and the caller
// decodes again with proto.Unmarshal. A field that occurs twice takes its
// last value, as proto.Unmarshal does. FuzzUnmarshalIntentLikeProto and
// FuzzUnmarshalEventLikeProto check them against proto.Unmarshal.

// field is one field of a message: its number and, by its wire type, its
// varint or its bytes (a sub-slice of the message).
type field struct {
	num     protowire.Number
	varint  uint64
	bytes   []byte
	isBytes bool
}

// nextField consumes the field at the start of b; ok is false unless it
// is a well-formed varint or length-delimited field.
func nextField(b []byte) (f field, rest []byte, ok bool) {
	num, typ, l := protowire.ConsumeTag(b)
	if l < 0 {
		return f, nil, false
	}
	b = b[l:]
	f.num = num
	switch typ {
	case protowire.VarintType:
		f.varint, l = protowire.ConsumeVarint(b)
	case protowire.BytesType:
		f.bytes, l = protowire.ConsumeBytes(b)
		f.isBytes = true
	default:
		return f, nil, false
	}
	if l < 0 {
		return f, nil, false
	}
	return f, b[l:], true
}

// lastTable is the table name decoded last: the records of a log are
// mostly of one table.
var lastTable atomic.Pointer[string]

// tableName returns b as a string, the last one decoded when it is equal
// (the comparison does not allocate).
func tableName(b []byte) string {
	if t := lastTable.Load(); t != nil && *t == string(b) {
		return *t
	}
	s := string(b)
	lastTable.Store(&s)
	return s
}

// copyBytes returns copies of a and b in one allocation, each capped (an
// append to one never writes into the other); an empty one is nil, as
// proto.Unmarshal gives it.
func copyBytes(a, b []byte) ([]byte, []byte) {
	if len(a)+len(b) == 0 {
		return nil, nil
	}
	buf := make([]byte, 0, len(a)+len(b))
	buf = append(append(buf, a...), b...)
	return capped(buf[:len(a)]), capped(buf[len(a):])
}

func capped(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b[:len(b):len(b)]
}

// shape is what a message's fields are, as bit masks of field numbers:
// the fields it has, those of them that are length-delimited, and those
// of these that are strings (valid UTF-8). The rest are varints.
type shape struct{ known, bytes, strings uint32 }

var (
	intentShape = shape{known: 1<<10 - 2, bytes: 1<<1 | 1<<2 | 1<<5 | 1<<9, strings: 1<<1 | 1<<5 | 1<<9}
	eventShape  = shape{known: 1<<12 - 2, bytes: 1<<1 | 1<<2 | 1<<5 | 1<<9 | 1<<11, strings: 1<<1 | 1<<9 | 1<<11}
)

// walk hands each field of b to each, in order. It returns false (the
// fields handed so far are then to be ignored) unless every field is
// well-formed and one of sh's, with its wire type, and every string valid
// UTF-8.
func (sh shape) walk(b []byte, each func(f field)) bool {
	for len(b) > 0 {
		var f field
		var ok bool
		if f, b, ok = nextField(b); !ok || f.num > 31 || sh.known&(1<<f.num) == 0 || f.isBytes != (sh.bytes&(1<<f.num) != 0) ||
			(sh.strings&(1<<f.num) != 0 && !utf8.Valid(f.bytes)) {
			return false
		}
		each(f)
	}
	return true
}

// head is fields 1 to 4, the same in both records: table, key, op (as
// protobuf reads it, for the error of an invalid one) and version.
type head struct {
	table, key []byte
	op         int32
	version    uint64
}

// take keeps f if it is one of the head's fields.
func (h *head) take(f field) bool {
	switch f.num {
	case 1:
		h.table = f.bytes
	case 2:
		h.key = f.bytes
	case 3:
		h.op = int32(f.varint)
	case 4:
		h.version = f.varint
	default:
		return false
	}
	return true
}

// tableName is the head's table as a string (see tableName).
func (h *head) tableName() string {
	if len(h.table) == 0 {
		return ""
	}
	return tableName(h.table)
}

// decodeIntent decodes a wail.v1.Intent by hand (see above). op is the
// op field as protobuf reads it, for the error of an invalid one.
func decodeIntent(b []byte) (in Intent, op int32, ok bool) {
	var h head
	var created int64
	ok = intentShape.walk(b, func(f field) {
		if h.take(f) {
			return
		}
		switch f.num {
		case 5:
			in.ID = string(f.bytes)
		case 6:
			in.ProxyID = uint32(f.varint)
		case 7:
			created = int64(f.varint)
		case 8:
			in.PublishedFloor = f.varint
		case 9:
			in.Trace = string(f.bytes)
		}
	})
	if !ok {
		return Intent{}, 0, false
	}
	in.Table, in.Op, in.Version, in.CreatedAt = h.tableName(), Op(h.op), h.version, time.UnixMicro(created)
	in.Key, _ = copyBytes(h.key, nil)
	return in, h.op, true
}

// decodeEvent decodes a wail.v1.ChangeEvent by hand (see above). op is
// the op field as protobuf reads it, for the error of an invalid one. The
// event id is checked (valid UTF-8) and left out, as EventFromProto
// leaves it.
func decodeEvent(b []byte) (e Event, op int32, ok bool) {
	var h head
	var value []byte
	var intentAt, resolvedAt int64
	ok = eventShape.walk(b, func(f field) {
		if h.take(f) {
			return
		}
		switch f.num {
		case 5:
			value = f.bytes
		case 6:
			intentAt = int64(f.varint)
		case 7:
			resolvedAt = int64(f.varint)
		case 8:
			e.CoveredIntents = uint32(f.varint)
		case 10:
			e.SchemaID = uint32(f.varint)
		case 11:
			e.Trace = string(f.bytes)
		}
	})
	if !ok {
		return Event{}, 0, false
	}
	e.Table, e.Op, e.Version = h.tableName(), Op(h.op), h.version
	e.IntentAt, e.ResolvedAt = time.UnixMicro(intentAt), time.UnixMicro(resolvedAt)
	e.Key, e.Value = copyBytes(h.key, value)
	return e, h.op, true
}
