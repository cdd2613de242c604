package logtest

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// testRouteKey: a record with a RouteKey goes to Partition(RouteKey, n),
// whatever its key, and reads back with its own key (the route is not
// stored).
func (s *suite) testRouteKey(t *testing.T) {
	const parts = 4
	l := s.openLog(t, t.TempDir())
	topic := s.topic(t, "")
	createTopic(t, l, topic, parts)
	ctx := ctxT(t)
	var recs []*intentlog.Record
	moved := 0
	for i := range 16 {
		route := fmt.Appendf(nil, "row-%d", i)
		key := append([]byte{0, 0, 0, 0, 1, 0}, route...) // the row key framed, as the event bus does
		recs = append(recs, &intentlog.Record{Key: key, Value: []byte("v"), RouteKey: route})
		if intentlog.Partition(key, parts) != intentlog.Partition(route, parts) {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("test keys: every framed key lands where its route does; the test would prove nothing")
	}
	if err := l.Append(ctx, topic, recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if want := intentlog.Partition(r.RouteKey, parts); r.Partition != want {
			t.Errorf("key %q: appended to partition %d, want Partition(RouteKey) = %d", r.Key, r.Partition, want)
		}
		got := readRange(t, l, topic, r.Partition, r.Offset, r.Offset+1)
		if len(got) != 1 || !bytes.Equal(got[0].Key, r.Key) || got[0].RouteKey != nil {
			t.Errorf("key %q: read back %+v", r.Key, got)
		}
	}
}
