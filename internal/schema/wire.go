package schema

import (
	"encoding/binary"
	"fmt"
)

// The Confluent wire format of a Protobuf record key or value, what every
// Confluent deserializer reads:
//
//	[0]     magic byte 0
//	[1:5]   schema id, big-endian
//	        message indexes: a zigzag varint count, then each index as a
//	        zigzag varint; the first message of the file ([0]) is the
//	        single byte 0
//	[...]   the message in Protobuf binary
const magic = 0

// maxIndexes bounds the message indexes ParseWire takes (the nesting
// depth of the message in its file).
const maxIndexes = 64

// AppendWire appends a record in the wire format to dst.
func AppendWire(dst []byte, id uint32, indexes []int, payload []byte) []byte {
	dst = append(dst, magic)
	dst = binary.BigEndian.AppendUint32(dst, id)
	if len(indexes) == 1 && indexes[0] == 0 {
		dst = binary.AppendVarint(dst, 0)
	} else {
		dst = binary.AppendVarint(dst, int64(len(indexes)))
		for _, i := range indexes {
			dst = binary.AppendVarint(dst, int64(i))
		}
	}
	return append(dst, payload...)
}

// ParseWire splits a record in the wire format; payload aliases b.
func ParseWire(b []byte) (id uint32, indexes []int, payload []byte, err error) {
	if len(b) < 6 || b[0] != magic {
		return 0, nil, nil, fmt.Errorf("%w: not in the Confluent wire format (magic byte 0, schema id, message indexes)", ErrValue)
	}
	id = binary.BigEndian.Uint32(b[1:5])
	rest := b[5:]
	n, k := binary.Varint(rest)
	if k <= 0 || n < 0 || n > maxIndexes {
		return 0, nil, nil, fmt.Errorf("%w: bad message index count in the wire format", ErrValue)
	}
	rest = rest[k:]
	if n == 0 {
		return id, []int{0}, rest, nil
	}
	indexes = make([]int, n)
	for i := range indexes {
		v, k := binary.Varint(rest)
		if k <= 0 || v < 0 || v > 1<<31-1 {
			return 0, nil, nil, fmt.Errorf("%w: bad message index in the wire format", ErrValue)
		}
		indexes[i], rest = int(v), rest[k:]
	}
	return id, indexes, rest, nil
}
