package eventbus

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strings"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// A cursor is where a subscriber resumes: the next offset of every
// partition of a table's event topic (one past the last record delivered
// or passed). Subscribe sends one with every event; a subscription from a
// cursor starts every partition at its offset, so it delivers exactly
// what came after: no event lost (unless retention removed it), none
// repeated. Offsets are not dense (tombstones after deletes, Kafka's
// transaction markers, offsets lost to a repair), which is why a cursor
// holds positions, not counts.
//
// Text form: "c" followed by the unpadded base64url of the binary form:
//
//	byte     version: 1; 2 with an after-version; 3 with the table's creation time;
//	         4 with the event topic's fingerprint
//	uint32   CRC-32C of the table name, big endian: a cursor of another table is refused
//	uvarint  n, the number of partitions
//	n uvarint the next offset of partitions 0..n-1
//	uvarint  (versions 2 to 4) the after-version (version 2: > 0; versions 3 and 4: 0 for none)
//	uvarint  (versions 3 and 4) the table's creation time, Unix microseconds
//	         (version 3: > 0; version 4: 0 for unknown)
//	8 bytes  (version 4) the fingerprint of the event topic's id (TopicPrint), not 0
//	uint32   CRC-32C of everything before, big endian
//
// A cursor is written in the lowest version that holds what it carries.
// A subscription started at "v<version>" skips events of that version or
// below; its cursors carry that version so that resuming from one skips
// them too: events of lower versions can still come after the ones
// delivered (other keys, another partition). The creation time tells a
// cursor of a table that was dropped and created again under the same
// name (and partition count) from one of the table now: its offsets mean
// nothing there, and it is refused.
//
// The fingerprint tells a cursor of an event topic that was deleted and
// created again behind wail's back (Kafka: the same name, partition count
// and table, another topic id) from one of the topic now: its offsets are
// the old topic's, and every event of the new topic came after them, so
// a stream from it starts at the new topic's start. It is written only on
// a log whose topics have ids (Kafka); the embedded log has none and
// writes version 3 (or lower) as before. 8 bytes, not the id's 16: a
// cursor goes with every event (16 bytes are 22 more characters of
// base64url on each, 8 are 11), and the fingerprint only has to tell a
// topic from the one it replaced. It folds the whole id (the XOR of its
// halves), so that each of the id's random bits counts (Kafka's ids are
// random UUIDs: 122 random bits; their fixed version and variant bits
// fold into random ones): a new topic passes for the old one with odds
// of 2^-64.
//
// Clients treat cursors as opaque strings: the format may gain versions,
// and a server decodes every version it ever wrote.

// Cursor encodings: version 1 holds offsets; version 2 also an
// after-version; version 3 also the table's creation time; version 4
// also the event topic's fingerprint.
const (
	cursorVersion1 = 1
	cursorVersion2 = 2
	cursorVersion3 = 3
	cursorVersion4 = 4
)

// cursorPrefix starts a cursor's text form.
const cursorPrefix = "c"

// maxCursorPartitions bounds what a cursor may hold (a decoder of
// external bytes must not allocate what they say).
const maxCursorPartitions = 1 << 16

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrBadCursor: a cursor could not be decoded or does not fit the table.
var ErrBadCursor = errors.New("invalid cursor")

// Cursor is a decoded cursor: the next offset of each partition, the
// version at or below which events are skipped (0: none), the table's
// creation time in Unix microseconds (0: unknown) and the fingerprint of
// the id of the event topic the offsets are of (TopicPrint; 0: unknown,
// the log has no ids).
type Cursor struct {
	Table        string
	Offsets      []int64
	AfterVersion uint64
	Created      int64
	Topic        uint64
}

// TopicPrint is the fingerprint of a topic id that a cursor carries: the
// XOR of its halves (see the format above), never 0; 0 for the zero id
// (none).
func TopicPrint(id intentlog.TopicID) uint64 {
	if id == (intentlog.TopicID{}) {
		return 0
	}
	if f := binary.BigEndian.Uint64(id[:8]) ^ binary.BigEndian.Uint64(id[8:]); f != 0 {
		return f
	}
	return 1
}

// String encodes the cursor.
func (c Cursor) String() string {
	return encodeCursor(tableSum(c.Table), c.Offsets, c.AfterVersion, uint64(max(c.Created, 0)), c.Topic)
}

// encodeCursor builds the text form with one allocation (the string) for
// up to 8 partitions: a stream sends a cursor with every event.
func encodeCursor(table uint32, offsets []int64, after, created, topic uint64) string {
	var buf [1 + 4 + binary.MaxVarintLen32 + 10*binary.MaxVarintLen64 + 8 + 4]byte
	version := byte(cursorVersion1)
	switch {
	case topic != 0:
		version = cursorVersion4
	case created > 0:
		version = cursorVersion3
	case after > 0:
		version = cursorVersion2
	}
	b := append(buf[:0], version)
	b = binary.BigEndian.AppendUint32(b, table)
	b = binary.AppendUvarint(b, uint64(len(offsets)))
	for _, o := range offsets {
		b = binary.AppendUvarint(b, uint64(o))
	}
	if version >= cursorVersion2 {
		b = binary.AppendUvarint(b, after)
	}
	if version >= cursorVersion3 {
		b = binary.AppendUvarint(b, created)
	}
	if version == cursorVersion4 {
		b = binary.BigEndian.AppendUint64(b, topic)
	}
	b = binary.BigEndian.AppendUint32(b, crc32c(b))
	var text [len(cursorPrefix) + (len(buf)*4+2)/3]byte
	t := append(text[:0], cursorPrefix...)
	return string(base64.RawURLEncoding.AppendEncode(t, b))
}

func tableSum(table string) uint32 { return crc32c(table) }

// crc32c is crc32.Checksum(b, castagnoli), computed a byte at a time
// here: crc32's own calls its implementation through a function value,
// so whatever it is passed escapes to the heap (the buffer encodeCursor
// keeps on its stack, a table name's bytes). A cursor's bytes are few.
func crc32c[T string | []byte](b T) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(b); i++ {
		crc = castagnoli[byte(crc)^b[i]] ^ crc>>8
	}
	return ^crc
}

// IsCursor reports whether s is in a cursor's text form (it may still
// fail to decode).
func IsCursor(s string) bool { return strings.HasPrefix(s, cursorPrefix) }

// ParseCursor decodes a cursor of table with the given partition count.
// Every failure wraps ErrBadCursor with what is wrong.
func ParseCursor(s, table string, partitions int32) (Cursor, error) {
	c, sum, err := decodeCursor(s)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: %w: pass a cursor exactly as a SubscribeResponse carried it", ErrBadCursor, err)
	}
	if sum != tableSum(table) {
		return Cursor{}, fmt.Errorf("%w: it belongs to another table than %q", ErrBadCursor, table)
	}
	if len(c.Offsets) != int(partitions) {
		return Cursor{}, fmt.Errorf("%w: it has %d partitions, table %q has %d (was the table dropped and created again?)",
			ErrBadCursor, len(c.Offsets), table, partitions)
	}
	c.Table = table
	return c, nil
}

// decodeCursor decodes a cursor's text form, returning the table checksum.
func decodeCursor(s string) (Cursor, uint32, error) {
	if !IsCursor(s) {
		return Cursor{}, 0, fmt.Errorf("it does not start with %q", cursorPrefix)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s[len(cursorPrefix):])
	if err != nil {
		return Cursor{}, 0, errors.New("it is not base64url")
	}
	if len(b) < 1+4+1+4 {
		return Cursor{}, 0, errors.New("it is too short")
	}
	if b[0] < cursorVersion1 || b[0] > cursorVersion4 {
		return Cursor{}, 0, fmt.Errorf("unknown version %d (written by a newer wail?)", b[0])
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return Cursor{}, 0, errors.New("its checksum does not match (cut or altered)")
	}
	table := binary.BigEndian.Uint32(body[1:5])
	rest := body[5:]
	n, k := uvarint(rest)
	if k <= 0 || n > maxCursorPartitions || n > uint64(len(rest)-k) {
		return Cursor{}, 0, errors.New("bad partition count")
	}
	rest = rest[k:]
	c := Cursor{Offsets: make([]int64, n)}
	for i := range c.Offsets {
		o, k := uvarint(rest)
		if k <= 0 || o > math.MaxInt64 {
			return Cursor{}, 0, fmt.Errorf("bad offset of partition %d", i)
		}
		c.Offsets[i], rest = int64(o), rest[k:]
	}
	if b[0] >= cursorVersion2 {
		v, k := uvarint(rest)
		if k <= 0 || (v == 0 && b[0] == cursorVersion2) {
			return Cursor{}, 0, errors.New("bad after-version")
		}
		c.AfterVersion, rest = v, rest[k:]
	}
	if b[0] >= cursorVersion3 {
		created, k := uvarint(rest)
		if k <= 0 || (created == 0 && b[0] == cursorVersion3) || created > math.MaxInt64 {
			return Cursor{}, 0, errors.New("bad table creation time")
		}
		c.Created, rest = int64(created), rest[k:]
	}
	if b[0] == cursorVersion4 {
		if len(rest) < 8 || binary.BigEndian.Uint64(rest) == 0 {
			return Cursor{}, 0, errors.New("bad topic fingerprint")
		}
		c.Topic, rest = binary.BigEndian.Uint64(rest), rest[8:]
	}
	if len(rest) != 0 {
		return Cursor{}, 0, errors.New("trailing bytes")
	}
	return c, table, nil
}

// uvarint decodes a uvarint in its shortest form only, so that a cursor
// has one text form.
func uvarint(b []byte) (uint64, int) {
	v, k := binary.Uvarint(b)
	if k <= 0 || k != len(binary.AppendUvarint(nil, v)) {
		return 0, -1
	}
	return v, k
}
