package versus

import (
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
)

// wailRecord encodes an event the way the bus publishes it.
func wailRecord(t testing.TB, e intent.Event) (key, value []byte, hs []kgo.RecordHeader) {
	t.Helper()
	r, err := eventbus.Encode(&e)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range r.Headers {
		hs = append(hs, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return r.Key, r.Value, hs
}

func valueWithID(id uint64, n int) []byte {
	v := make([]byte, n)
	putWriteID(v, id)
	return v
}

func TestDecodeWail(t *testing.T) {
	t.Parallel()
	upK, upV, upH := wailRecord(t, intent.Event{Table: "t", Key: []byte("k1"), Op: intent.Upsert, Version: 42, Value: valueWithID(7, 100)})
	delK, delV, delH := wailRecord(t, intent.Event{Table: "t", Key: []byte("k2"), Op: intent.Delete, Version: 43})
	tests := []struct {
		name    string
		key     []byte
		value   []byte
		headers []kgo.RecordHeader
		want    Event
		skip    bool
		wantErr bool
	}{
		{name: "upsert", key: upK, value: upV, headers: upH, want: Event{Key: []byte("k1"), Token: 42, WriteID: 7}},
		{name: "delete", key: delK, value: delV, headers: delH, want: Event{Key: []byte("k2"), Token: 43, Delete: true}},
		{name: "tombstone after a delete", key: []byte("k2"), value: nil, skip: true},
		{name: "no headers", key: upK, value: upV, wantErr: true},
		{name: "bad version", key: upK, value: upV, headers: []kgo.RecordHeader{
			{Key: eventbus.HeaderVersion, Value: []byte("x1")}, {Key: eventbus.HeaderOp, Value: []byte("UPSERT")}}, wantErr: true},
		{name: "unknown op", key: upK, value: upV, headers: []kgo.RecordHeader{
			{Key: eventbus.HeaderVersion, Value: []byte("1")}, {Key: eventbus.HeaderOp, Value: []byte("ABORT")}}, wantErr: true},
		{name: "value not a ChangeEvent", key: upK, value: []byte{0xff, 0xff, 0xff}, headers: upH, wantErr: true},
		{name: "short value: no write id", key: []byte("k"), value: mustValue(t, []byte{1, 2}), headers: upH, want: Event{Key: []byte("k"), Token: 42}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, skip, err := DecodeWail(tc.key, tc.value, tc.headers)
			if (err != nil) != tc.wantErr || skip != tc.skip {
				t.Fatalf("err %v skip %v, want error %v skip %v", err, skip, tc.wantErr, tc.skip)
			}
			if err == nil && !skip && fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// mustValue is the record value of an upsert event carrying v.
func mustValue(t *testing.T, v []byte) []byte {
	_, val, _ := wailRecord(t, intent.Event{Table: "t", Key: []byte("k"), Op: intent.Upsert, Version: 42, Value: v})
	return val
}

// dbzJSON is a Debezium event as the JsonConverter writes it with schemas
// (the schema shortened: the decoder ignores it).
func dbzJSON(op, before, after, txID string) string {
	return `{"schema":{"type":"struct","fields":[]},"payload":{"before":` + before + `,"after":` + after +
		`,"source":{"version":"2.7.3.Final","connector":"postgresql","name":"wailvs","db":"wail","schema":"public","table":"t","txId":` + txID +
		`,"lsn":24023128},"op":"` + op + `","ts_ms":1}}`
}

func TestDecodeDebezium(t *testing.T) {
	t.Parallel()
	v := base64.StdEncoding.EncodeToString(valueWithID(9, 100))
	row := `{"k":"k000000000000001","v":"` + v + `"}`
	tests := []struct {
		name    string
		value   string
		null    bool
		want    Event
		wantErr bool
	}{
		{name: "insert", value: dbzJSON("c", "null", row, "771"), want: Event{Key: []byte("k000000000000001"), Token: 771, WriteID: 9}},
		{name: "update", value: dbzJSON("u", "null", row, "772"), want: Event{Key: []byte("k000000000000001"), Token: 772, WriteID: 9}},
		{name: "snapshot read", value: dbzJSON("r", "null", row, "5"), want: Event{Key: []byte("k000000000000001"), Token: 5, WriteID: 9}},
		{name: "delete: key in before", value: dbzJSON("d", `{"k":"k2","v":null}`, "null", "773"), want: Event{Key: []byte("k2"), Token: 773, Delete: true}},
		{name: "without schema envelope", value: `{"before":null,"after":` + row + `,"source":{"txId":774},"op":"c"}`,
			want: Event{Key: []byte("k000000000000001"), Token: 774, WriteID: 9}},
		{name: "tombstone", null: true},
		{name: "not JSON", value: `{"payload":`, wantErr: true},
		{name: "no txId", value: dbzJSON("c", "null", row, "null"), wantErr: true},
		{name: "unknown op", value: dbzJSON("t", "null", row, "1"), wantErr: true},
		{name: "delete without before", value: dbzJSON("d", "null", "null", "1"), wantErr: true},
		{name: "value not base64", value: dbzJSON("c", "null", `{"k":"a","v":"!!"}`, "1"), wantErr: true},
		{name: "negative txId", value: dbzJSON("c", "null", row, "-1"), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var val []byte
			if !tc.null {
				val = []byte(tc.value)
			}
			got, skip, err := DecodeDebezium(nil, val, nil)
			if (err != nil) != tc.wantErr || skip != tc.null {
				t.Fatalf("err %v skip %v, want error %v skip %v", err, skip, tc.wantErr, tc.null)
			}
			if err == nil && !skip && fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzDecodeWail(f *testing.F) {
	k, v, hs := wailRecord(f, intent.Event{Table: "t", Key: []byte("k1"), Op: intent.Upsert, Version: 42, Value: valueWithID(7, 100)})
	f.Add(k, v, hs[0].Value, hs[1].Value)
	f.Add([]byte("k"), []byte{}, []byte("1"), []byte("DELETE"))
	f.Fuzz(func(t *testing.T, key, value, version, op []byte) {
		hs := []kgo.RecordHeader{{Key: eventbus.HeaderVersion, Value: version}, {Key: eventbus.HeaderOp, Value: op}}
		ev, skip, err := DecodeWail(key, value, hs)
		if err == nil && !skip && string(ev.Key) != string(key) {
			t.Fatalf("key %q decoded as %q", key, ev.Key)
		}
	})
}

func FuzzDecodeDebezium(f *testing.F) {
	f.Add([]byte(dbzJSON("c", "null", `{"k":"a","v":"AAAAAAAAAAc="}`, "3")))
	f.Add([]byte(dbzJSON("d", `{"k":"a"}`, "null", "4")))
	f.Add([]byte(`{"op":"u","after":{"k":"b"},"source":{"txId":1}}`))
	f.Fuzz(func(t *testing.T, value []byte) {
		ev, skip, err := DecodeDebezium(nil, value, nil)
		if err == nil && !skip && ev.Key == nil {
			t.Fatalf("event without a key from %q", value)
		}
	})
}
