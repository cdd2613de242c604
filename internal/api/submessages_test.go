package api

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

func TestJSONObjects(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{`{}`, 0},
		{`{"acks":[{},{"partition":1}]}`, 2},
		{`{"table":"{{{","acks":[{}]}`, 1},
		{`{"table":"a\"{\\","acks":[{}]}`, 1},
		{`{"a":{"b":{}}}`, 2},
		{``, -1},
	} {
		if got := jsonObjects([]byte(tc.in), 100); got != tc.want {
			t.Errorf("jsonObjects(%s) = %d, want %d", tc.in, got, tc.want)
		}
	}
	if got := jsonObjects([]byte(`{"acks":[{}`+strings.Repeat(`,{}`, 1000)+`]}`), 10); got != 11 {
		t.Errorf("the count past the limit = %d, want it to stop at 11", got)
	}
}

func TestWireMessages(t *testing.T) {
	acks := &wailv1.AckRequest{Table: "t", Group: "g", Acks: []*wailv1.PartitionAck{{}, {Partition: 1, Next: 5}, {}}}
	create := &wailv1.CreateTableRequest{Name: "t", KeySchema: &wailv1.TypeSchema{References: []*wailv1.SchemaReference{{}, {}}}}
	for _, tc := range []struct {
		name string
		m    proto.Message
		want int
	}{
		{"no messages", &wailv1.AckRequest{Table: "t"}, 0},
		{"acks", acks, 3},
		{"nested references", create, 3},
	} {
		b, err := proto.Marshal(tc.m)
		if err != nil {
			t.Fatal(err)
		}
		if got := wireMessages(b, tc.m.ProtoReflect().Descriptor(), 100, 0); got != tc.want {
			t.Errorf("%s: %d messages, want %d", tc.name, got, tc.want)
		}
		c := boundedProto{maxMessages: tc.want}
		if err := c.Unmarshal(b, tc.m.ProtoReflect().New().Interface()); err != nil {
			t.Errorf("%s: at the limit: %v", tc.name, err)
		}
		if tc.want > 0 {
			c.maxMessages = tc.want - 1
			if err := c.Unmarshal(b, tc.m.ProtoReflect().New().Interface()); err == nil || !strings.Contains(err.Error(), "not decoded") {
				t.Errorf("%s: past the limit: %v", tc.name, err)
			}
		}
	}
}
