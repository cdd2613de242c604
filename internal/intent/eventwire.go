package intent

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// errEventUTF8 is what proto.Marshal refuses too: a string field that is
// not valid UTF-8 (the event id is valid when the table is: the rest of it
// is hex and digits).
var errEventUTF8 = errors.New("encode event: string field is not valid UTF-8")

// Marshal encodes an event as a wail.v1.ChangeEvent, byte for byte as
// proto.Marshal(e.Proto()) does (fields in number order, zero values left
// out, the event id built into place), without building the message: the
// resolver encodes one per event. TestEventMarshalLikeProto and
// FuzzEventMarshalLikeProto compare the two.
func (e *Event) Marshal() ([]byte, error) {
	b, _, err := e.MarshalID()
	return b, err
}

// MarshalID is Marshal that also returns the event id (EventID) as it lies
// inside the encoding (a sub-slice of b, capped): the event's record takes
// it as its id header without building it again.
func (e *Event) MarshalID() (b, id []byte, err error) {
	if !utf8.ValidString(e.Table) || !utf8.ValidString(e.Trace) {
		return nil, nil, errEventUTF8
	}
	intentAt, resolvedAt := e.IntentAt.UnixMicro(), e.ResolvedAt.UnixMicro()
	idLen := EventIDLen(e.Table, e.Key, e.Version)
	b = make([]byte, 0, e.size(intentAt, resolvedAt, idLen))
	b = appendString(b, 1, e.Table)
	b = appendBytes(b, 2, e.Key)
	b = appendVarint(b, 3, uint64(int64(e.Op)))
	b = appendVarint(b, 4, e.Version)
	b = appendBytes(b, 5, e.Value)
	b = appendVarint(b, 6, uint64(intentAt))
	b = appendVarint(b, 7, uint64(resolvedAt))
	b = appendVarint(b, 8, uint64(e.CoveredIntents))
	// The event id is never empty (it holds two slashes).
	b = protowire.AppendVarint(protowire.AppendTag(b, 9, protowire.BytesType), uint64(idLen))
	b = appendEventID(b, e.Table, e.Key, e.Version)
	id = b[len(b)-idLen : len(b) : len(b)]
	b = appendVarint(b, 10, uint64(e.SchemaID))
	b = appendString(b, 11, e.Trace)
	return b, id, nil
}

// Size is the length of the event's encoding (Marshal's, proto.Size of
// e.Proto()), computed without encoding it.
func (e *Event) Size() int {
	return e.size(e.IntentAt.UnixMicro(), e.ResolvedAt.UnixMicro(), EventIDLen(e.Table, e.Key, e.Version))
}

// size is the length of the encoding (every tag here is one byte).
func (e *Event) size(intentAt, resolvedAt int64, idLen int) int {
	n := 1 + protowire.SizeBytes(idLen)
	for _, l := range []int{len(e.Table), len(e.Key), len(e.Value), len(e.Trace)} {
		if l > 0 {
			n += 1 + protowire.SizeBytes(l)
		}
	}
	for _, v := range []uint64{uint64(int64(e.Op)), e.Version, uint64(intentAt), uint64(resolvedAt),
		uint64(e.CoveredIntents), uint64(e.SchemaID)} {
		if v != 0 {
			n += 1 + protowire.SizeVarint(v)
		}
	}
	return n
}

// appendEventID appends EventID(table, key, version).
func appendEventID[T string | []byte](b []byte, table T, key []byte, version uint64) []byte {
	b = append(append(b, table...), '/')
	b = append(hex.AppendEncode(b, key), '/')
	return strconv.AppendUint(b, version, 10)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

// ScanEvent reports whether b is exactly the encoding that Marshal gives
// of the event UnmarshalEvent decodes from it, so that b can stand for
// proto.Marshal(e.Proto()) of that event: every field in number order,
// present when not zero, its tag, length and varint in their shortest
// form; a valid op and version; strings valid UTF-8; numbers that survive
// the round trip through Event; and the event id that Proto would build.
// It returns the key (a sub-slice of b) and the version, without copying
// or allocating anything: an event stream sends b as it is.
func ScanEvent(b []byte) (key []byte, version uint64, ok bool) {
	var table, id []byte
	var op uint64
	last := protowire.Number(0)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n != 1 || num <= last || num > 11 || (typ == protowire.BytesType) != (eventShape.bytes&(1<<num) != 0) {
			return nil, 0, false
		}
		last, b = num, b[n:]
		if typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 || len(v) == 0 || n != protowire.SizeBytes(len(v)) {
				return nil, 0, false
			}
			switch num {
			case 1:
				table = v
			case 2:
				key = v
			case 9:
				id = v
			case 11:
				if !utf8.Valid(v) {
					return nil, 0, false
				}
			}
			b = b[n:]
			continue
		}
		if typ != protowire.VarintType {
			return nil, 0, false
		}
		v, n := protowire.ConsumeVarint(b)
		if n < 0 || v == 0 || n != protowire.SizeVarint(v) {
			return nil, 0, false
		}
		switch num {
		case 3:
			op = v
		case 4:
			version = v
		case 6, 7:
			if us := int64(v); time.UnixMicro(us).UnixMicro() != us {
				return nil, 0, false
			}
		case 8, 10:
			if v > math.MaxUint32 {
				return nil, 0, false
			}
		}
		b = b[n:]
	}
	if (op != uint64(Upsert) && op != uint64(Delete)) || version == 0 || version > MaxVersion || !utf8.Valid(table) {
		return nil, 0, false
	}
	var buf [128]byte
	if !bytes.Equal(id, appendEventID(buf[:0], table, key, version)) {
		return nil, 0, false
	}
	return key, version, true
}
