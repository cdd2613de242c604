package api

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// writeCodec is the Producer service's binary protobuf codec. It decodes
// WriteRequest and WriteStreamRequest by hand: generic proto.Unmarshal
// allocates every Mutation, key, value and table name on its own (four
// allocations per write, six percent of the process's CPU at batches of
// 1000 plus their share of the GC); here a request's mutations take one
// slice, its keys and values share one copy of the request's bytes, and
// a table name repeated from the previous mutation is not copied again.
//
// Only the common, well-formed case is decoded by hand: on anything else
// (an unknown field, a known field with another wire type, invalid UTF-8,
// a truncated or malformed message) it decodes again with proto.Unmarshal,
// which keeps unknown fields and gives protobuf's own errors. Every other
// message, and every encoding, is proto's. FuzzWriteCodec checks it
// against proto.Unmarshal.
//
// The keys and values of a request share one buffer (never pooled nor
// reused: the garbage collector frees it once nothing points into it):
// whoever keeps one of them past the request must copy it, or it keeps
// the whole request alive (the proxy's intent records take the intent's
// copy of the key).
//
// A request of more than maxMutations mutations (limits.max_batch_mutations;
// 0: no cap) is refused before any is decoded: a 32 MiB request of empty
// mutations (two bytes each) would otherwise take 2 GiB of Mutation
// structs, by hand or by proto.Unmarshal, before the handler refused it.
type writeCodec struct{ maxMutations int }

// writeCodecName is connect's name of binary protobuf ("application/proto",
// "application/grpc"): this codec replaces connect's own.
const writeCodecName = "proto"

func (writeCodec) Name() string { return writeCodecName }

func (writeCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("proto: %T is not a protobuf message", v)
	}
	return proto.Marshal(m)
}

// MarshalAppend lets connect encode into its pooled buffers, as its own
// codec does.
func (writeCodec) MarshalAppend(dst []byte, v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("proto: %T is not a protobuf message", v)
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, m)
}

// MarshalStable and IsBinary are what connect asks of a codec for GET
// requests, as its own codec answers them.
func (writeCodec) MarshalStable(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("proto: %T is not a protobuf message", v)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

func (writeCodec) IsBinary() bool { return true }

func (c writeCodec) Unmarshal(b []byte, v any) error {
	var ok bool
	var err error
	switch m := v.(type) {
	case *wailv1.WriteRequest:
		m.Reset()
		m.Mutations, ok, err = c.decodeMutations(b, 1, nil)
	case *wailv1.WriteStreamRequest:
		m.Reset()
		m.Mutations, ok, err = c.decodeMutations(b, 2, &m.Seq)
	}
	if ok || err != nil {
		return err
	}
	pm, isProto := v.(proto.Message)
	if !isProto {
		return fmt.Errorf("proto: %T is not a protobuf message", v)
	}
	if err := proto.Unmarshal(b, pm); err != nil {
		return fmt.Errorf("unmarshal into %T: %w", v, err)
	}
	return nil
}

// decodeMutations decodes a message whose field field is a repeated
// Mutation and, when seq is not nil, whose field 1 is a uint64 (the
// stream's seq). It returns false for anything but the well-formed
// message with no unknown fields, and an error for more than
// c.maxMutations mutations, whatever else the message holds.
func (c writeCodec) decodeMutations(b []byte, field protowire.Number, seq *uint64) ([]*wailv1.Mutation, bool, error) {
	n, ok := countMutations(b, field, seq != nil)
	if c.maxMutations > 0 && n > c.maxMutations {
		err := fmt.Errorf("batch has %d mutations, the limit is %d (limits.max_batch_mutations)", n, c.maxMutations)
		if seq != nil {
			return nil, false, overCap(wireSeq(b), err)
		}
		return nil, false, err
	}
	if !ok {
		return nil, false, nil
	}
	if n == 0 {
		// Only a seq, or nothing.
		if seq != nil {
			*seq = wireSeq(b)
		}
		return nil, true, nil
	}
	buf := bytes.Clone(b) // connect reuses b once Unmarshal returns
	slab := make([]wailv1.Mutation, n)
	out := make([]*wailv1.Mutation, n)
	var table string
	i := 0
	for len(buf) > 0 {
		num, _, l := protowire.ConsumeTag(buf)
		buf = buf[l:]
		if num == 1 && seq != nil { // checked to be a varint by countMutations
			v, l := protowire.ConsumeVarint(buf)
			*seq, buf = v, buf[l:]
			continue
		}
		msg, l := protowire.ConsumeBytes(buf)
		buf = buf[l:]
		m := &slab[i]
		if !decodeMutation(msg, m, &table) {
			return nil, false, nil
		}
		out[i] = m
		i++
	}
	return out, true, nil
}

// countMutations walks the message once: it counts the mutations (those
// before the first malformed field, if any: what proto.Unmarshal would
// decode before it failed) and reports whether every field is one
// decodeMutations knows, with its wire type, and well-formed.
func countMutations(b []byte, field protowire.Number, withSeq bool) (n int, known bool) {
	known = true
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return n, false
		}
		b = b[l:]
		l = protowire.ConsumeFieldValue(num, typ, b)
		if l < 0 {
			return n, false
		}
		b = b[l:]
		switch {
		case num == field && typ == protowire.BytesType:
			n++
		case withSeq && num == 1 && typ == protowire.VarintType:
		default:
			known = false // an unknown field, or a known one with another wire type: proto's
		}
	}
	return n, known
}

// overCap is the refusal of a WriteStream batch over
// limits.max_batch_mutations, decoded no further than its seq: the batch
// is answered invalid_argument (nothing of it written) and the stream
// goes on, as for every other batch refused whole. Ending the stream
// would drop the batches sent after it unanswered.
func overCap(seq uint64, err error) error {
	return &refusedBatch{&wailv1.WriteStreamResponse{Seq: seq,
		Error: &wailv1.Error{Code: connect.CodeInvalidArgument.String(), Message: err.Error() + "; send fewer writes per batch (client.ProducerConfig.BatchSize)"}}}
}

// wireSeq is the seq (field 1, a varint; the last one, as proto decodes
// it) of an encoded WriteStreamRequest, 0 when it has none or the bytes
// are malformed before it.
func wireSeq(b []byte) uint64 {
	var seq uint64
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return seq
		}
		b = b[l:]
		if num == 1 && typ == protowire.VarintType {
			v, l := protowire.ConsumeVarint(b)
			if l < 0 {
				return seq
			}
			seq, b = v, b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(num, typ, b)
		if l < 0 {
			return seq
		}
		b = b[l:]
	}
	return seq
}

// decodeMutation decodes one Mutation from b into m. Its byte fields
// alias b (a copy of the request). table is the table name of the previous
// mutation: an equal name reuses its string.
func decodeMutation(b []byte, m *wailv1.Mutation, table *string) bool {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return false
		}
		b = b[l:]
		if num == 3 {
			if typ != protowire.VarintType {
				return false
			}
			v, l := protowire.ConsumeVarint(b)
			if l < 0 {
				return false
			}
			m.Op, b = wailv1.Op(int32(v)), b[l:]
			continue
		}
		if typ != protowire.BytesType {
			return false
		}
		v, l := protowire.ConsumeBytes(b)
		if l < 0 {
			return false
		}
		b = b[l:]
		switch num {
		case 1:
			if string(v) != *table { // no allocation: compared in place
				if !utf8.Valid(v) {
					return false
				}
				*table = string(v)
			}
			m.Table = *table
		case 2:
			m.Key = bytesField(v)
		case 4:
			m.Value = bytesField(v)
		case 5:
			if !utf8.Valid(v) {
				return false
			}
			m.ValueJson = string(v)
		default:
			return false
		}
	}
	return true
}

// bytesField is a bytes field's value as proto.Unmarshal gives it (nil when
// empty), capped so that an append to it never writes into its
// neighbour.
func bytesField(v []byte) []byte {
	if len(v) == 0 {
		return nil
	}
	return v[:len(v):len(v)]
}

// producerCodec is the handler option that installs writeCodec, refusing
// requests of more than maxMutations mutations (0: no cap).
func producerCodec(maxMutations int) connect.HandlerOption {
	return connect.WithCodec(writeCodec{maxMutations: maxMutations})
}
