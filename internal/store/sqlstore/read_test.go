package sqlstore

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
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

// rowsOf is a result set of rows of (key, value, version, deleted,
// schema id), failing with err once they are read.
type rowsOf struct {
	rows [][]any
	err  error
	i    int
}

func (r *rowsOf) Next() bool { r.i++; return r.i <= len(r.rows) }

func (r *rowsOf) Scan(dest ...any) error {
	for j, v := range r.rows[r.i-1] {
		reflect.ValueOf(dest[j]).Elem().Set(reflect.ValueOf(v))
	}
	return nil
}

func (r *rowsOf) Err() error { return r.err }

// TestReadMany: a chunk that fails fails GetMany with what fail makes of
// its error, never answers its keys "not found" (which would pass for
// their state); fail's nil (a replica that lacks the table yet) answers
// them not found. A result set that ends in an error fails its chunk.
func TestReadMany(t *testing.T) {
	t.Parallel()
	keys := [][]byte{[]byte("a"), []byte("b")}
	boom := errors.New("connection lost mid-read")
	for _, tc := range []struct {
		name     string
		rowsErr  error // the result set's error after its rows
		failed   error // what fail makes of it
		wantErr  bool
		wantRead bool // a found
	}{
		{"answered", nil, nil, false, true},
		{"the result set fails", boom, boom, true, false},
		{"the replica lacks the table", boom, nil, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var failedWith error
			reads, err := ReadMany(keys, func(chunk [][]byte, m *MultiRows) error {
				return m.Scan(&rowsOf{rows: [][]any{{[]byte("a"), []byte("va"), int64(3), false, int64(0)}}, err: tc.rowsErr})
			}, func(err error) error {
				failedWith = err
				return tc.failed
			})
			if (err != nil) != tc.wantErr || (err != nil && !errors.Is(err, tc.failed)) {
				t.Fatalf("ReadMany = %+v, %v; want error %v", reads, err, tc.wantErr)
			}
			if tc.rowsErr != nil && !errors.Is(failedWith, tc.rowsErr) {
				t.Errorf("fail was given %v, want the result set's error", failedWith)
			}
			if err == nil && (len(reads) != 2 || reads[0].Found != tc.wantRead || reads[1].Found) {
				t.Errorf("reads %+v", reads)
			}
		})
	}
}

// TestReplicasRefused: a replica refused fails its reads at once with the
// refusal, until RefusedRecheck passes or Recheck is called; Refuse and
// Accept report the changes the store logs (first refusal, accepted
// again).
func TestReplicasRefused(t *testing.T) {
	t.Parallel()
	var rs Replicas
	rs.Add("replica-0", "a:1")
	rs.Add("replica-1", "b:1")
	if rs.Accept(0) {
		t.Error("Accept of a replica never refused says it was refused")
	}
	if _, first := rs.Refuse(1, "another cluster"); !first {
		t.Error("the first refusal is not reported first")
	}
	if _, first := rs.Refuse(1, "another cluster"); first {
		t.Error("a second refusal is reported first")
	}
	if n := rs.Refused(); n != 1 {
		t.Errorf("Refused = %d, want 1", n)
	}
	var no *NotOurs
	if _, err := rs.Admit(1); !errors.As(err, &no) || no.Level != "replica-1" || !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Admit of a refused replica: %v, want its NotOurs", err)
	}
	if _, err := rs.Admit(0); err != nil {
		t.Errorf("Admit of the other replica: %v", err)
	}
	if _, err := rs.Admit(2); err != nil { // the primary
		t.Errorf("Admit of the primary: %v", err)
	}
	rs.Recheck(1)
	if _, err := rs.Admit(1); err != nil {
		t.Errorf("Admit after Recheck: %v, want the read let through to check it again", err)
	}
	if !rs.Accept(1) {
		t.Error("Accept of a refused replica does not say it was refused")
	}
	if rs.Accept(1) || rs.Refused() != 0 {
		t.Errorf("after Accept: accepted again, or %d refused", rs.Refused())
	}
}

// TestCheckAtOpen: replicas that answer and are not ours fail Open, all
// of them named; one that does not answer is left to be checked when it
// connects.
func TestCheckAtOpen(t *testing.T) {
	t.Parallel()
	down := errors.New("connection refused")
	var unreached []int
	var mu sync.Mutex
	err := CheckAtOpen(4, func(i int) error {
		switch i {
		case 1, 3:
			return fmt.Errorf("check: %w", &NotOurs{Level: fmt.Sprintf("replica-%d", i), Why: "another cluster"})
		case 2:
			return down
		}
		return nil
	}, func(i int, err error) {
		mu.Lock()
		defer mu.Unlock()
		if errors.Is(err, down) {
			unreached = append(unreached, i)
		}
	})
	var no *NotOurs
	if !errors.As(err, &no) || !strings.Contains(err.Error(), "replica-1") || !strings.Contains(err.Error(), "replica-3") || errors.Is(err, down) {
		t.Errorf("CheckAtOpen = %v, want the refusals of replicas 1 and 3 only", err)
	}
	if !reflect.DeepEqual(unreached, []int{2}) {
		t.Errorf("unreached %v, want [2]", unreached)
	}
	if err := CheckAtOpen(2, func(int) error { return nil }, func(int, error) { t.Error("unreached called") }); err != nil {
		t.Errorf("CheckAtOpen of replicas that are ours: %v", err)
	}
}
