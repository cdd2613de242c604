package intent

import (
	"errors"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// errUTF8 is what proto.Marshal refuses too: a string field that is not
// valid UTF-8.
var errUTF8 = errors.New("encode intent: string field is not valid UTF-8")

// Marshal encodes an intent as a wail.v1.Intent, byte for byte as
// proto.Marshal(in.Proto()) does (fields in number order, zero values
// left out), without building the message: the proxy encodes one per
// write. TestMarshalLikeProto and FuzzMarshalLikeProto compare the two.
func (in *Intent) Marshal() ([]byte, error) {
	b, _, err := in.MarshalKeyed()
	return b, err
}

// MarshalKeyed is Marshal that also returns the copy of in.Key inside the
// encoding (a sub-slice of b, capped): an intent record takes it as its
// key, so that the record holds nothing of the caller's memory (the
// proxy's keys are slices of a whole request, which a log that keeps the
// record after Append returns, as Kafka's producer does until the broker
// answers, would keep alive) and costs no allocation of its own. An empty
// in.Key is returned as it is (nil or empty, as a record key tells them
// apart).
func (in *Intent) MarshalKeyed() (b, key []byte, err error) {
	if !utf8.ValidString(in.Table) || !utf8.ValidString(in.ID) || !utf8.ValidString(in.Trace) {
		return nil, nil, errUTF8
	}
	created := in.CreatedAt.UnixMicro()
	b = make([]byte, 0, in.size(created))
	b = appendString(b, 1, in.Table)
	key = in.Key
	if len(in.Key) > 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(len(in.Key)))
		b = append(b, in.Key...)
		key = b[len(b)-len(in.Key) : len(b) : len(b)]
	} else if in.Key != nil {
		key = []byte{} // not in.Key[:0]: that would still point into the caller's memory
	}
	b = appendVarint(b, 3, uint64(int64(in.Op)))
	b = appendVarint(b, 4, in.Version)
	b = appendString(b, 5, in.ID)
	b = appendVarint(b, 6, uint64(in.ProxyID))
	b = appendVarint(b, 7, uint64(created))
	b = appendVarint(b, 8, in.PublishedFloor)
	b = appendString(b, 9, in.Trace)
	return b, key, nil
}

// size is the length of the encoding (every tag here is one byte).
func (in *Intent) size(created int64) int {
	n := 0
	for _, l := range []int{len(in.Table), len(in.Key), len(in.ID), len(in.Trace)} {
		if l > 0 {
			n += 1 + protowire.SizeBytes(l)
		}
	}
	for _, v := range []uint64{uint64(int64(in.Op)), in.Version, uint64(in.ProxyID), uint64(created), in.PublishedFloor} {
		if v != 0 {
			n += 1 + protowire.SizeVarint(v)
		}
	}
	return n
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}
