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
