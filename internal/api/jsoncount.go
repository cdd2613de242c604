package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// producerJSON is strictJSON for the Producer service: a JSON Write or
// WriteStream batch of more than maxMutations mutations (0: no cap) is
// refused before protojson decodes it, as writeCodec refuses a binary one:
// a 32 MiB body of "{}," elements would otherwise take gigabytes of
// Mutation structs before the handler counted them.
type producerJSON struct {
	strictJSON
	maxMutations int
}

// producerJSONCodecs replaces the JSON codecs of the Producer service.
func producerJSONCodecs(maxMutations int) []connect.HandlerOption {
	return []connect.HandlerOption{
		connect.WithCodec(producerJSON{strictJSON{"json"}, maxMutations}),
		connect.WithCodec(producerJSON{strictJSON{"json; charset=utf-8"}, maxMutations}),
	}
}

func (c producerJSON) Unmarshal(b []byte, v any) error {
	switch v.(type) {
	case *wailv1.WriteRequest, *wailv1.WriteStreamRequest:
		if c.maxMutations > 0 {
			if n := countJSONMutations(b, c.maxMutations); n > c.maxMutations {
				err := fmt.Errorf("batch has more than %d mutations, the limit is %d (limits.max_batch_mutations)", c.maxMutations, c.maxMutations)
				if _, stream := v.(*wailv1.WriteStreamRequest); stream {
					return overCap(jsonSeq(b), err)
				}
				return err
			}
		}
	}
	return c.strictJSON.Unmarshal(b, v)
}

// countJSONMutations counts the elements of the "mutations" arrays of a
// JSON object, stopping once it counted more than limit. On malformed JSON
// it returns what it counted up to there: protojson then refuses the body
// (having decoded no more mutations than were counted).
func countJSONMutations(b []byte, limit int) int {
	s := jsonScan{b: b}
	s.space()
	if !s.eat('{') {
		return 0
	}
	n := 0
	for {
		s.space()
		if s.eat('}') || s.i >= len(s.b) {
			return n
		}
		key, ok := s.key()
		if !ok {
			return n
		}
		s.space()
		if !s.eat(':') {
			return n
		}
		s.space()
		if key != "mutations" || !s.eat('[') {
			if !s.value() {
				return n
			}
		} else {
			for {
				s.space()
				if s.eat(']') {
					break
				}
				if !s.value() {
					return n
				}
				if n++; n > limit {
					return n
				}
				s.space()
				if !s.eat(',') && !(s.i < len(s.b) && s.b[s.i] == ']') {
					return n
				}
			}
		}
		s.space()
		if !s.eat(',') && !(s.i < len(s.b) && s.b[s.i] == '}') {
			return n
		}
	}
}

// jsonScan walks JSON without building anything.
type jsonScan struct {
	b []byte
	i int
}

func (s *jsonScan) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

func (s *jsonScan) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str passes a string (at its opening quote); escaped tells whether it
// holds a backslash escape.
func (s *jsonScan) str() (start, end int, escaped, ok bool) {
	if !s.eat('"') {
		return 0, 0, false, false
	}
	start = s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			escaped = true
			s.i += 2
			continue
		case '"':
			end = s.i
			s.i++
			return start, end, escaped, true
		}
		s.i++
	}
	return 0, 0, false, false
}

// key returns an object key, unescaped as protojson reads it
// ("mut\u0061tions" is "mutations").
func (s *jsonScan) key() (string, bool) {
	start, end, escaped, ok := s.str()
	if !ok {
		return "", false
	}
	if !escaped {
		return string(s.b[start:end]), true
	}
	var k string
	if err := json.Unmarshal(s.b[start-1:end+1], &k); err != nil {
		return "", false
	}
	return k, true
}

// value passes one value: a string, an object or array (with what it
// holds), or a literal or number.
func (s *jsonScan) value() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		_, _, _, ok := s.str()
		return ok
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if _, _, _, ok := s.str(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	}
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return s.i > start
		}
		s.i++
	}
	return s.i > start
}

// jsonSeq is the "seq" of a JSON WriteStreamRequest (a number or, as
// protojson writes a uint64, a string), 0 when it has none or the body
// is malformed. The mutations are scanned, not decoded.
func jsonSeq(b []byte) uint64 {
	var m struct {
		Seq json.RawMessage `json:"seq"`
	}
	if json.Unmarshal(b, &m) != nil {
		return 0
	}
	seq, err := strconv.ParseUint(strings.Trim(string(m.Seq), `"`), 10, 64)
	if err != nil {
		return 0
	}
	return seq
}
