package dlq

import (
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var (
	goldenLetter = &wailv1.DeadLetter{
		Table: "orders", Partition: 3, Key: []byte("o-42"), Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_PUBLISH,
		Intents: []*wailv1.Intent{{Table: "orders", Key: []byte("o-42"), Op: wailv1.Op_OP_UPSERT, Version: 228014658021236743,
			IntentId: "7-228014658021236743", ProxyId: 7, CreatedAtUs: 1763700000123456}},
		IntentOffsets: []int64{1234}, Error: "eventbus: publish orders: record too large", Permanent: true, Attempts: 1,
		FirstAttemptUs: 1763700000125000, LastAttemptUs: 1763700000125000, ResolverId: "host-7070", DeadAtUs: 1763700000126000,
	}
	goldenGap = &wailv1.DeadLetter{
		Table: "orders", Partition: 5, Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP,
		Error: "retention removed intents before they were resolved", GapStartOffset: 100, GapEndOffset: 250,
		ResolverId: "host-7070", DeadAtUs: 1763700000126000,
	}
	goldenSink = &wailv1.DeadLetter{
		Table: "orders", Partition: 2, Key: []byte("o-42"), Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_SINK,
		Error: "gave up after 3 attempts in 1.2s: HTTP 500: boom", Attempts: 3, FirstAttemptUs: 1763700000125000,
		LastAttemptUs: 1763700001325000, DeadAtUs: 1763700001326000, Sink: "billing", EventOffset: 77, HttpStatus: 500,
		Event: &wailv1.ChangeEvent{Table: "orders", Key: []byte("o-42"), Op: wailv1.Op_OP_UPSERT, Version: 228014658021236743,
			Value: []byte(`{"status":"paid"}`), EventId: "orders/o-42/228014658021236743"},
	}
	goldenSuperseded = &wailv1.DeadLetterResolution{
		Offset: 18, Action: wailv1.DeadLetterAction_DEAD_LETTER_ACTION_SUPERSEDED, AtUs: 1763700002000000,
		SupersededByVersion: 228014658021236900, SupersededByOffset: 80,
	}
	goldenResolution = &wailv1.DeadLetterResolution{
		Offset: 17, Action: wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN, AtUs: 1763700001000000, RedriveVersion: 228014658021236800,
	}
	goldenClaim = &wailv1.DeadLetterClaim{
		Offset: 17, Id: "6f1e0c3a9b2d4e5f60718293", Epoch: 4, AtUs: 1763700001500000, Holder: "host h1 pid 4242 (sink billing, partition 3 epoch 4)",
	}
)

// golden compares b with testdata/name (hex, 32 bytes a line) or rewrites it.
func golden(t *testing.T, name string, b []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	var sb strings.Builder
	for i := 0; i < len(b); i += 32 {
		sb.WriteString(hex.EncodeToString(b[i:min(i+32, len(b))]) + "\n")
	}
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if sb.String() != string(want) {
		t.Fatalf("wire format of %s changed:\n got %s\nwant %s", name, sb.String(), want)
	}
}

func TestWireFormat(t *testing.T) {
	cases := []struct {
		name    string
		encode  func() ([]byte, []byte, error)
		key     string
		isFinal func(*wailv1.DeadLetterRecord) bool
	}{
		{"letter.golden", func() ([]byte, []byte, error) {
			r, err := LetterRecord(goldenLetter)
			if err != nil {
				return nil, nil, err
			}
			return r.Key, r.Value, nil
		}, "o-42", func(m *wailv1.DeadLetterRecord) bool { return proto.Equal(m.GetLetter(), goldenLetter) }},
		{"gap.golden", func() ([]byte, []byte, error) {
			r, err := LetterRecord(goldenGap)
			if err != nil {
				return nil, nil, err
			}
			return r.Key, r.Value, nil
		}, "gap/5", func(m *wailv1.DeadLetterRecord) bool { return proto.Equal(m.GetLetter(), goldenGap) }},
		{"sink.golden", func() ([]byte, []byte, error) {
			r, err := LetterRecord(goldenSink)
			if err != nil {
				return nil, nil, err
			}
			return r.Key, r.Value, nil
		}, "o-42", func(m *wailv1.DeadLetterRecord) bool { return proto.Equal(m.GetLetter(), goldenSink) }},
		{"superseded.golden", func() ([]byte, []byte, error) {
			r, err := ResolutionRecord(goldenSuperseded)
			if err != nil {
				return nil, nil, err
			}
			return r.Key, r.Value, nil
		}, "", func(m *wailv1.DeadLetterRecord) bool { return proto.Equal(m.GetResolution(), goldenSuperseded) }},
		{"resolution.golden", func() ([]byte, []byte, error) {
			r, err := ResolutionRecord(goldenResolution)
			if err != nil {
				return nil, nil, err
			}
			return r.Key, r.Value, nil
		}, "", func(m *wailv1.DeadLetterRecord) bool { return proto.Equal(m.GetResolution(), goldenResolution) }},
		{"claim.golden", func() ([]byte, []byte, error) {
			r, err := ClaimRecord(goldenClaim)
			if err != nil {
				return nil, nil, err
			}
			return r.Key, r.Value, nil
		}, "", func(m *wailv1.DeadLetterRecord) bool { return proto.Equal(m.GetClaim(), goldenClaim) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key, value, err := c.encode()
			if err != nil {
				t.Fatal(err)
			}
			if string(key) != c.key {
				t.Fatalf("key %q, want %q", key, c.key)
			}
			golden(t, c.name, value)
			m, err := Decode(value)
			if err != nil {
				t.Fatal(err)
			}
			if !c.isFinal(m) {
				t.Fatalf("round trip: %v", m)
			}
		})
	}
}

// TestSnapshotLetter: a SNAPSHOT letter (a row a snapshot left out) has a
// key and a row version, no intents, and round-trips.
func TestSnapshotLetter(t *testing.T) {
	l := &wailv1.DeadLetter{Table: "orders", Partition: 1, Key: []byte("k"), Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_SNAPSHOT,
		Error: "snapshot: fits no live version", Permanent: true, SnapshotVersion: 42}
	rec, err := LetterRecord(l)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(rec.Value)
	if err != nil || !proto.Equal(m.GetLetter(), l) || string(rec.Key) != "k" {
		t.Fatalf("round trip: %v %v", m, err)
	}
}

func sinkBad(f func(l *wailv1.DeadLetter)) *wailv1.DeadLetter {
	l := proto.Clone(goldenSink).(*wailv1.DeadLetter)
	f(l)
	return l
}

func TestRejects(t *testing.T) {
	bad := func(f func(l *wailv1.DeadLetter)) *wailv1.DeadLetter {
		l := proto.Clone(goldenLetter).(*wailv1.DeadLetter)
		f(l)
		return l
	}
	letters := map[string]*wailv1.DeadLetter{
		"nil":                   nil,
		"no table":              bad(func(l *wailv1.DeadLetter) { l.Table = "" }),
		"no key":                bad(func(l *wailv1.DeadLetter) { l.Key = nil }),
		"no intents":            bad(func(l *wailv1.DeadLetter) { l.Intents, l.IntentOffsets = nil, nil }),
		"offsets missing":       bad(func(l *wailv1.DeadLetter) { l.IntentOffsets = nil }),
		"no kind":               bad(func(l *wailv1.DeadLetter) { l.Kind = 0 }),
		"negative part":         bad(func(l *wailv1.DeadLetter) { l.Partition = -1 }),
		"snapshot with intents": bad(func(l *wailv1.DeadLetter) { l.Kind = wailv1.DeadLetterKind_DEAD_LETTER_KIND_SNAPSHOT }),
		"snapshot without key": bad(func(l *wailv1.DeadLetter) {
			l.Kind, l.Key, l.Intents, l.IntentOffsets = wailv1.DeadLetterKind_DEAD_LETTER_KIND_SNAPSHOT, nil, nil, nil
		}),
		"sink without event": sinkBad(func(l *wailv1.DeadLetter) { l.Event = nil }),
		"sink without name":  sinkBad(func(l *wailv1.DeadLetter) { l.Sink = "" }),
		"sink without key":   sinkBad(func(l *wailv1.DeadLetter) { l.Key = nil }),
		"sink offset -2":     sinkBad(func(l *wailv1.DeadLetter) { l.EventOffset = -2 }),
		"sink with intents": sinkBad(func(l *wailv1.DeadLetter) {
			l.Intents, l.IntentOffsets = goldenLetter.Intents, goldenLetter.IntentOffsets
		}),
		"empty gap": func() *wailv1.DeadLetter {
			g := proto.Clone(goldenGap).(*wailv1.DeadLetter)
			g.GapEndOffset = g.GapStartOffset
			return g
		}(),
	}
	for name, l := range letters {
		if _, err := LetterRecord(l); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
	for name, r := range map[string]*wailv1.DeadLetterResolution{
		"nil":       nil,
		"no action": {Offset: 1},
		"negative":  {Offset: -1, Action: wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED},
	} {
		if _, err := ResolutionRecord(r); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
	for name, c := range map[string]*wailv1.DeadLetterClaim{
		"nil":      nil,
		"no id":    {Offset: 1, Epoch: 1},
		"negative": {Offset: -1, Id: "c"},
	} {
		if _, err := ClaimRecord(c); err == nil {
			t.Errorf("claim %s: encoded", name)
		}
	}
	for name, b := range map[string][]byte{
		"empty":   {},
		"garbage": {0xff, 0xff, 0xff},
		"intent":  []byte("\x0a\x06orders"), // a letter with only a table
	} {
		if _, err := Decode(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// entryOf is the message a record holds: its letter, resolution or claim.
func entryOf(m *wailv1.DeadLetterRecord) proto.Message {
	switch e := m.Entry.(type) {
	case *wailv1.DeadLetterRecord_Letter:
		return e.Letter
	case *wailv1.DeadLetterRecord_Resolution:
		return e.Resolution
	case *wailv1.DeadLetterRecord_Claim:
		return e.Claim
	}
	return nil
}

func FuzzDecode(f *testing.F) {
	for _, l := range []*wailv1.DeadLetter{goldenLetter, goldenGap, goldenSink} {
		r, _ := LetterRecord(l)
		f.Add(r.Value)
	}
	r, _ := ResolutionRecord(goldenResolution)
	f.Add(r.Value)
	r, _ = ClaimRecord(goldenClaim)
	f.Add(r.Value)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		// What decodes must encode again and decode to the same record.
		var rec []byte
		switch e := m.Entry.(type) {
		case *wailv1.DeadLetterRecord_Letter:
			r, err := LetterRecord(e.Letter)
			if err != nil {
				t.Fatalf("decoded but does not encode: %v", err)
			}
			rec = r.Value
		case *wailv1.DeadLetterRecord_Resolution:
			r, err := ResolutionRecord(e.Resolution)
			if err != nil {
				t.Fatalf("decoded but does not encode: %v", err)
			}
			rec = r.Value
		case *wailv1.DeadLetterRecord_Claim:
			r, err := ClaimRecord(e.Claim)
			if err != nil {
				t.Fatalf("decoded but does not encode: %v", err)
			}
			rec = r.Value
		}
		// The entry round-trips, with the unknown fields it holds; those
		// beside it (a newer format's) are not the encoders' to carry.
		m2, err := Decode(rec)
		if err != nil || !proto.Equal(entryOf(m), entryOf(m2)) {
			t.Fatalf("round trip: %v, %v", m2, err)
		}
	})
}
