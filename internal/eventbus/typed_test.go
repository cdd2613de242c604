package eventbus

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// fixedTyper types every table: keys under schema 7 (message [0]), values
// under the id they were written with when it is 11 or 12 (message [1, 0]
// in both), id 0 as 12; the value "drift" fits no schema.
type fixedTyper struct{ keyID uint32 }

func (f fixedTyper) EventTypes(_ context.Context, table string) (EventTypes, bool, error) {
	if table == "untyped" {
		return EventTypes{}, false, nil
	}
	return EventTypes{KeyID: f.keyID, KeyIndexes: []int{0}, Value: func(_ context.Context, written uint32, value []byte) (uint32, []int, error) {
		switch {
		case string(value) == "drift":
			return 0, nil, fmt.Errorf("%w: test", ErrDrift)
		case string(value) == "unavailable":
			return 0, nil, errors.New("registry unavailable")
		case written == 0:
			return 12, []int{1, 0}, nil
		}
		return written, []int{1, 0}, nil
	}}, true, nil
}

var (
	typedAt  = time.UnixMicro(1764500000000000)
	upsert   = intent.Event{Table: "orders", Key: []byte("order-1"), Op: intent.Upsert, Version: 42, Value: []byte("\x0a\x03abc"), SchemaID: 11, IntentAt: typedAt, ResolvedAt: typedAt.Add(time.Millisecond), CoveredIntents: 2, Trace: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	deletion = intent.Event{Table: "orders", Key: []byte("order-1"), Op: intent.Delete, Version: 43, IntentAt: typedAt, ResolvedAt: typedAt, CoveredIntents: 1}
)

// dump is a record as the golden files hold it: key, value (null for a
// tombstone) and headers, bytes in hex.
func dump(r *intentlog.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "key %s\n", hex.EncodeToString(r.Key))
	if r.Value == nil {
		b.WriteString("value null\n")
	} else {
		fmt.Fprintf(&b, "value %s\n", hex.EncodeToString(r.Value))
	}
	for _, h := range r.Headers {
		fmt.Fprintf(&b, "header %s %s\n", h.Key, h.Value)
	}
	return b.String()
}

// TestTypedGolden: the records of a typed upsert and delete, byte for
// byte (golden files: a change breaks every consumer).
func TestTypedGolden(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		file  string
		keyID uint32
		e     intent.Event
	}{
		{"typed-upsert.golden", 7, upsert},
		{"typed-delete.golden", 7, deletion},
		{"typed-upsert-raw-key.golden", 0, upsert},
	} {
		b := &Bus{typer: fixedTyper{c.keyID}}
		_, recs, err := b.Records(t.Context(), c.e.Table, []intent.Event{c.e})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 {
			t.Fatalf("%s: %d records, want 1 (a typed delete is its own tombstone)", c.file, len(recs))
		}
		if !bytes.Equal(recs[0].RouteKey, c.e.Key) {
			t.Errorf("%s: RouteKey %q, want the row key", c.file, recs[0].RouteKey)
		}
		got := dump(recs[0])
		path := filepath.Join("testdata", c.file)
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("%s: encoded\n%s\ngolden\n%s", c.file, got, want)
		}
	}
}

// TestTypedRoundTrip: Decode gives back the event a typed record was made
// of (the key and value unframed, the schema id it was published under),
// and still reads wail's envelope and skips its tombstones.
func TestTypedRoundTrip(t *testing.T) {
	t.Parallel()
	noID := upsert
	noID.SchemaID, noID.Trace, noID.Value = 0, "", []byte{}
	for _, keyID := range []uint32{0, 7} {
		b := &Bus{typer: fixedTyper{keyID}}
		for _, e := range []intent.Event{upsert, deletion, noID} {
			_, recs, err := b.Records(t.Context(), e.Table, []intent.Event{e})
			if err != nil {
				t.Fatal(err)
			}
			got, ok, err := Decode(recs[0])
			want := e
			if e.SchemaID == 0 && e.Op == intent.Upsert {
				want.SchemaID = 12 // what the typer published it under
			}
			if !ok || err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("key id %d: Decode = %+v, %v, %v; want %+v", keyID, got, ok, err, want)
			}
		}
	}
	_, recs, err := New(nil).Records(t.Context(), "orders", []intent.Event{upsert, deletion})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("envelope: %d records, want 3 (a tombstone after the delete)", len(recs))
	}
	for i, r := range recs {
		e, ok, err := Decode(r)
		switch {
		case err != nil:
			t.Errorf("envelope record %d: %v", i, err)
		case i == 2 && ok:
			t.Errorf("the envelope's tombstone decodes as an event: %+v", e)
		case i < 2 && (!ok || e.Version != []uint64{42, 43}[i]):
			t.Errorf("envelope record %d: %+v, %v", i, e, ok)
		}
	}
	// An untyped table of a bus with a Typer: the envelope.
	_, recs, err = (&Bus{typer: fixedTyper{7}}).Records(t.Context(), "untyped", []intent.Event{upsert})
	if err != nil || len(recs) != 1 || recs[0].RouteKey != nil || recs[0].Value[0] == 0 {
		t.Errorf("untyped table: %v, %v", recs, err)
	}
}

// TestTypedDrift: a value that fits no schema makes Records fail with
// ErrEncode (the resolver dead-letters the event, never publishes it); a
// registry that cannot be read fails it with a plain error (retry).
func TestTypedDrift(t *testing.T) {
	t.Parallel()
	b := &Bus{typer: fixedTyper{7}}
	bad := upsert
	bad.Value = []byte("drift")
	_, _, err := b.Records(t.Context(), "orders", []intent.Event{upsert, bad})
	if !errors.Is(err, ErrEncode) || !errors.Is(err, ErrDrift) {
		t.Errorf("drifted value: %v, want ErrEncode and ErrDrift", err)
	}
	bad.Value = []byte("unavailable")
	_, _, err = b.Records(t.Context(), "orders", []intent.Event{bad})
	if err == nil || errors.Is(err, ErrEncode) {
		t.Errorf("registry down: %v, want an error that is not ErrEncode", err)
	}
}

// TestTypedSize: Size bounds what a typed event's record takes in Kafka's
// format at its widest, and an embedded log whose batch limit is Size
// takes it, routed by the row key.
func TestTypedSize(t *testing.T) {
	t.Parallel()
	neg := time.UnixMicro(-1)
	wide := intent.Event{Table: strings.Repeat("t", 63), Key: []byte(strings.Repeat("k", 4096)), Op: intent.Upsert,
		Version: intent.MaxVersion, Value: []byte("v"), IntentAt: neg, ResolvedAt: neg, CoveredIntents: 1<<32 - 1, SchemaID: 1<<32 - 1, Trace: intent.WidestTrace}
	short := intent.Event{Table: "t", Key: []byte("k"), Op: intent.Upsert, Version: 1, Value: []byte{}, SchemaID: 1}
	del := deletion
	for _, e := range []intent.Event{upsert, del, wide, short} {
		_, recs, err := (&Bus{typer: fixedTyper{1<<32 - 1}}).Records(t.Context(), e.Table, []intent.Event{e})
		if err != nil {
			t.Fatal(err)
		}
		if got, bound := kafkaWidest(recs[0]), Size(&e); got > bound {
			t.Errorf("key %.10q: record takes %d, Size says %d", e.Key, got, bound)
		}
		log, err := embedded.Open(t.TempDir(), embedded.Options{MaxBatchBytes: int64(29 + Size(&e)), MaxRecordBytes: 1 << 30})
		if err != nil {
			t.Fatal(err)
		}
		bus := New(log)
		bus.SetTyper(fixedTyper{1<<32 - 1})
		if err := bus.CreateTable(t.Context(), e.Table, 4, 0); err != nil {
			t.Fatal(err)
		}
		if err := bus.Publish(t.Context(), e.Table, []intent.Event{e}); err != nil {
			t.Errorf("key %.10q: an embedded log whose batch limit is Size: %v", e.Key, err)
		}
		p := intentlog.Partition(e.Key, 4)
		last, err := bus.LastVersions(t.Context(), e.Table, p, time.Time{})
		if err != nil || last[string(e.Key)] != e.Version {
			t.Errorf("key %.10q: LastVersions of partition %d (the row key's) = %v, %v; want version %d", e.Key, p, last, err, e.Version)
		}
		log.Close()
	}
}

// FuzzDecode: any record decodes or fails cleanly, never panics; what
// decodes as a typed event encodes back to a record that decodes the same,
// and as a ChangeEvent (what a stream sends).
func FuzzDecode(f *testing.F) {
	b := &Bus{typer: fixedTyper{7}}
	for _, e := range []intent.Event{upsert, deletion} {
		_, recs, _ := b.Records(context.Background(), e.Table, []intent.Event{e})
		r := recs[0]
		f.Add(r.Key, r.Value, r.Value == nil, string(header(r, HeaderVersion)), string(header(r, HeaderOp)), string(header(r, HeaderEventID)), string(header(r, HeaderKeyFormat)), "")
	}
	f.Add([]byte("k"), []byte{0, 0, 0, 0, 1}, false, "1", "UPSERT", "t/6b/1", "raw", "")
	f.Add([]byte{0, 0, 0, 0, 1, 2}, []byte{0, 0, 0, 0, 1, 0x7f}, false, "9", "UPSERT", "t/6b/9", "confluent", "")
	f.Add([]byte("k"), []byte(nil), true, "3", "DELETE", "\xff/6b/3", "raw", "")
	f.Add([]byte("k"), []byte(nil), true, "3", "DELETE", "t/6b/3", "raw", "\xff")
	f.Fuzz(func(t *testing.T, key, value []byte, null bool, version, op, id, kf, trace string) {
		if null {
			value = nil
		}
		r := &intentlog.Record{Key: key, Value: value, Headers: []intentlog.Header{
			{Key: HeaderVersion, Value: []byte(version)}, {Key: HeaderOp, Value: []byte(op)},
			{Key: HeaderEventID, Value: []byte(id)}, {Key: HeaderKeyFormat, Value: []byte(kf)},
			{Key: HeaderTrace, Value: []byte(trace)},
		}}
		e, ok, err := Decode(r)
		if err != nil || !ok || (len(value) > 0 && value[0] != 0) {
			return
		}
		if e.Version == 0 || (e.Op != intent.Upsert && e.Op != intent.Delete) {
			t.Fatalf("decoded an invalid event %+v", e)
		}
		if _, err := proto.Marshal(e.Proto()); err != nil {
			t.Fatalf("decoded an event no stream can send: %v", err)
		}
	})
}

// TestTypedHeaderLens: typedSize counts the headers typedHeaders builds,
// with the times at their widest.
func TestTypedHeaderLens(t *testing.T) {
	wide := intent.Event{Table: "t", Key: []byte("k"), Op: intent.Upsert, Version: 1<<64 - 1, CoveredIntents: 1<<32 - 1, Trace: intent.WidestTrace}
	for _, e := range []intent.Event{upsert, deletion, wide, {Table: "t", Op: intent.Upsert}} {
		hs, n := typedHeaderLens(&e)
		built := typedHeaders(&e, true)
		if n != len(built) {
			t.Fatalf("%d header lengths, typedHeaders builds %d", n, len(built))
		}
		for i, h := range built {
			want := [2]int{len(h.Key), len(h.Value)}
			if h.Key == HeaderIntentAt || h.Key == HeaderResolved {
				want[1] = 20
			}
			if hs[i] != want {
				t.Errorf("version %d: header %d (%s): lengths %v, want %v", e.Version, i, h.Key, hs[i], want)
			}
		}
	}
}

// TestImpossibleVersionRefused: an event record with bit 63 set in its
// version (no clock stamps one: a forged or damaged record) does not
// decode, in either form. Decoded, the resolver's recovery took it as the
// key's last published version, above any version a write can get, and
// every later write of the key resolved with no event.
func TestImpossibleVersionRefused(t *testing.T) {
	t.Parallel()
	forged := upsert
	forged.Version = 1 << 63
	for name, b := range map[string]*Bus{"envelope": New(nil), "typed": {typer: fixedTyper{7}}} {
		_, recs, err := b.Records(t.Context(), forged.Table, []intent.Event{forged})
		if err != nil {
			t.Fatal(err)
		}
		if e, ok, err := Decode(recs[0]); ok || err == nil {
			t.Errorf("%s: an event of version %d decoded: %+v", name, forged.Version, e)
		}
	}
}
