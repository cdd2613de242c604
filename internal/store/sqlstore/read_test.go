package sqlstore

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

func TestLevels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		replicas []string
		names    []string
	}{
		{nil, []string{"primary"}},
		{[]string{"r0", "r1"}, []string{"replica-0", "replica-1", "primary"}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(len(tc.replicas)), func(t *testing.T) {
			t.Parallel()
			if got := LevelNames(len(tc.replicas)); !reflect.DeepEqual(got, tc.names) {
				t.Errorf("LevelNames = %v, want %v", got, tc.names)
			}
			for level, name := range tc.names {
				want := "p"
				if level < len(tc.replicas) {
					want = tc.replicas[level]
				}
				if got, err := Pool(store.Level(level), "p", tc.replicas); got != want || err != nil {
					t.Errorf("Pool(%d, %s) = %q, %v, want %q", level, name, got, err, want)
				}
			}
			for _, level := range []store.Level{-1, store.Level(len(tc.names))} {
				if _, err := Pool(level, "p", tc.replicas); err == nil {
					t.Errorf("Pool(%d) succeeded", level)
				}
			}
		})
	}
}

func TestRow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		value   []byte
		deleted bool
		schema  int64
		want    store.Row
	}{
		{"live", []byte("v"), false, 0, store.Row{Value: []byte("v"), Version: 3}},
		{"live, empty", nil, false, 0, store.Row{Value: []byte{}, Version: 3}},
		{"live, typed", []byte("v"), false, 9, store.Row{Value: []byte("v"), Version: 3, SchemaID: 9}},
		{"tombstone", []byte{}, true, 0, store.Row{Version: 3, Deleted: true}},
		{"tombstone, a schema id left", []byte{}, true, 9, store.Row{Version: 3, Deleted: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Row(tc.value, 3, tc.deleted, tc.schema)
			if !reflect.DeepEqual(got, tc.want) || (got.Value == nil) != (tc.want.Value == nil) {
				t.Errorf("Row = %#v, want %#v", got, tc.want)
			}
		})
	}
	if NotNull(nil) == nil || string(NotNull([]byte("x"))) != "x" {
		t.Error("NotNull")
	}
}

func TestReplicaErr(t *testing.T) {
	t.Parallel()
	errDown := fmt.Errorf("%w: connection refused", store.ErrUnavailable)
	errAsk := errors.New("primary down")
	tests := []struct {
		name   string
		err    error
		exists bool
		askErr error
		want   error // nil: not found
		asked  bool
	}{
		{"not a missing table", errDown, true, nil, errDown, false},
		{"the replica lags the table", store.ErrUnknownTable, true, nil, nil, true},
		{"no such table", store.ErrUnknownTable, false, nil, store.ErrUnknownTable, true},
		{"the primary cannot tell", store.ErrUnknownTable, false, errAsk, errAsk, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			asked := false
			err := ReplicaErr(tc.err, func() (bool, error) { asked = true; return tc.exists, tc.askErr })
			if err != tc.want || asked != tc.asked {
				t.Errorf("ReplicaErr = %v (asked %v), want %v (asked %v)", err, asked, tc.want, tc.asked)
			}
		})
	}
}

func TestMultiRows(t *testing.T) {
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("a"), nil, []byte("c")}
	m := NewMultiRows(keys)
	var n int
	for _, c := range m.Chunks() {
		n += len(c)
	}
	if n != 4 { // a, b, "", c
		t.Fatalf("chunks hold %d keys, want the 4 distinct ones", n)
	}
	m.Found([]byte("a"), []byte("va"), 3, false, 7)
	m.Found([]byte("c"), nil, 4, true, 0)
	m.Found([]byte("stranger"), []byte("x"), 9, false, 0) // not asked: ignored
	reads := m.Reads(keys)
	if len(reads) != len(keys) {
		t.Fatalf("%d reads for %d keys", len(reads), len(keys))
	}
	if !reads[0].Found || string(reads[0].Row.Value) != "va" || reads[0].Row.SchemaID != 7 || reads[1].Found || !reads[2].Found || reads[3].Found ||
		!reads[4].Found || !reads[4].Row.Deleted || reads[4].Row.Value != nil {
		t.Fatalf("reads: %+v", reads)
	}
	reads[0].Row.Value[0] = 'X'
	if reads[2].Row.Value[0] == 'X' {
		t.Error("a key asked twice shares its value buffer")
	}

	big := make([][]byte, 2*MultiGetChunk+1)
	for i := range big {
		big[i] = []byte{byte(i), byte(i >> 8)}
	}
	chunks := NewMultiRows(big).Chunks()
	if len(chunks) != 3 || len(chunks[0]) != MultiGetChunk || len(chunks[2]) != 1 {
		t.Errorf("%d keys in chunks of %d, %d, ...", len(big), len(chunks[0]), len(chunks[len(chunks)-1]))
	}
}
