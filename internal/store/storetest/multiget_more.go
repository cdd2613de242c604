package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// testMultiGetMore (for a store.MultiGetter), beyond testMultiGet: binary
// and 4 KiB keys, a key overwritten, more keys than one statement of the
// SQL stores takes (1000); at every cheaper level a key is absent or
// exactly what the strongest holds, and catches up; a closed store fails
// with ErrClosed.
func testMultiGetMore(t *testing.T, s store.Store) {
	mg, ok := s.(store.MultiGetter)
	if !ok {
		t.Skip("not a store.MultiGetter")
	}
	ctx := t.Context()
	create(t, s, "multi2")
	big := bytes.Repeat([]byte{0xfe}, 4096)
	muts := []store.Mutation{
		put("a", 10, "va"), del("gone", 11), {Key: []byte{0, 1, 0xff}, Value: []byte{0}, Version: 12},
		{Key: big, Value: bytes.Repeat([]byte("x"), 1000), Version: 13},
	}
	const many = 1500
	for i := range many {
		muts = append(muts, put(fmt.Sprintf("k%04d", i), uint64(100+i), fmt.Sprintf("v%d", i)))
	}
	apply(t, s, "multi2", muts...)
	apply(t, s, "multi2", put("a", 20, "va2")) // a later version replaces the first

	keys := [][]byte{[]byte("a"), []byte("gone"), []byte("never"), {0, 1, 0xff}, big, []byte("a"), nil}
	for i := range many {
		keys = append(keys, fmt.Appendf(nil, "k%04d", i))
	}
	want := make([]store.Row, len(keys))
	for i, k := range keys {
		row, found := get(t, s, "multi2", k)
		if found {
			want[i] = row
		}
	}
	if want[0].Version != 20 || !want[1].Deleted || want[2].Version != 0 || want[len(want)-1].Version != 100+many-1 {
		t.Fatalf("Get's answers are not what was written: %+v %+v %+v", want[0], want[1], want[2])
	}
	got, err := getMany(mg, t, keys, strongest(s))
	if err != nil {
		t.Fatalf("GetMany at the strongest level: %v", err)
	}
	checkRows(t, "strongest level", got, want, false)

	// Cheaper levels: absent (not replayed yet) or the primary's row; they
	// catch up.
	for level := range len(s.Levels()) - 1 {
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := getMany(mg, t, keys, store.Level(level))
			if err != nil {
				t.Fatalf("GetMany at level %d: %v", level, err)
			}
			if checkRows(t, fmt.Sprintf("level %d", level), got, want, true) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GetMany at level %d: still behind the strongest level after 10s", level)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := mg.GetMany(ctx, "multi2", keys[:1], strongest(s)); !errors.Is(err, store.ErrClosed) {
		t.Errorf("GetMany after Close: %v, want ErrClosed", err)
	}
}

// getMany reads keys of multi2 and returns their rows (the zero Row when
// not found), failing on an error of one key.
func getMany(mg store.MultiGetter, t *testing.T, keys [][]byte, level store.Level) ([]store.Row, error) {
	t.Helper()
	reads, err := mg.GetMany(t.Context(), "multi2", keys, level)
	if err != nil {
		return nil, err
	}
	if len(reads) != len(keys) {
		t.Fatalf("GetMany: %d reads for %d keys", len(reads), len(keys))
	}
	rows := make([]store.Row, len(reads))
	for i, r := range reads {
		if r.Err != nil {
			t.Fatalf("GetMany: key %d: %v", i, r.Err)
		}
		if r.Found != (r.Row.Version != 0) {
			t.Fatalf("GetMany: key %d found=%v with version %d", i, r.Found, r.Row.Version)
		}
		rows[i] = r.Row
	}
	return rows, nil
}

// checkRows compares a GetMany's rows with want. With behind set, a zero
// row stands for a row not replayed yet: it reports false (not caught up)
// instead of failing, but any other difference fails.
func checkRows(t *testing.T, what string, got, want []store.Row, behind bool) bool {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("GetMany at %s: %d rows for %d keys", what, len(got), len(want))
	}
	caught := true
	for i := range want {
		g, w := got[i], want[i]
		if behind && g.Version == 0 && w.Version != 0 {
			caught = false
			continue
		}
		if behind && g.Version < w.Version && g.Version != 0 {
			caught = false // an older version, on its way
			continue
		}
		if g.Version != w.Version || g.Deleted != w.Deleted || !bytes.Equal(g.Value, w.Value) || (g.Value == nil) != (w.Value == nil) {
			t.Fatalf("GetMany at %s: row %d = %+v, want %+v", what, i, g, w)
		}
	}
	return caught
}
