package pebble

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// TestOrderOutsideStripes: a batch that reserved its keys but is not yet
// in Pebble (held between its stripes and its memtable insert) decides
// the version checks of later batches of its keys: a lower version loses
// to it (and answers only once it is durable), a higher one wins and
// reaches Pebble after it, so Pebble ends with the highest version, also
// after a reopen. Batches of other keys are not held up. With the version
// cache on and off (then only the reservation knows the held version).
func TestOrderOutsideStripes(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"caches", Options{}},
		{"no caches", Options{VersionCacheKeys: -1, RowCacheBytes: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir, tc.opts)
			if err := s.CreateTable(t.Context(), "t"); err != nil {
				t.Fatal(err)
			}
			mustApply(t, s, mut("k", 1))

			var checks atomic.Int32
			s.testHookCheck = func() { checks.Add(1) }
			held, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			s.testHookApply = func() {
				first := false
				once.Do(func() { first = true })
				if first {
					close(held)
					<-release
				}
			}
			type result struct {
				out []store.Outcome
				err error
			}
			apply := func(muts ...store.Mutation) chan result {
				c := make(chan result, 1)
				go func() {
					out, err := s.Apply(t.Context(), "t", muts)
					c <- result{out, err}
				}()
				return c
			}
			a := apply(mut("k", 7))
			<-held // a reserved k at 7 and waits outside the stripes
			lower, higher := apply(mut("k", 6)), apply(mut("k", 9))
			other := within(t, 10*time.Second, "a write of another key", func() result {
				out, err := s.Apply(t.Context(), "t", []store.Mutation{mut("other", 1)})
				return result{out, err}
			})
			if other.err != nil || !other.out[0].Applied {
				t.Fatalf("write of another key while k's batch is held: %+v, %v", other.out, other.err)
			}
			for checks.Load() < 4 { // a, lower, higher, other checked
				time.Sleep(time.Millisecond)
			}
			select {
			case r := <-higher:
				t.Fatalf("version 9 answered (%+v, %v) before version 7, held, reached Pebble", r.out, r.err)
			default:
			}
			close(release)
			for name, c := range map[string]chan result{"7": a, "6": lower, "9": higher} {
				r := within(t, 10*time.Second, "Apply of version "+name, func() result { return <-c })
				if r.err != nil {
					t.Fatalf("Apply of version %s: %v", name, r.err)
				}
				want := store.Outcome{Applied: name != "6", Current: map[string]uint64{"7": 7, "6": 7, "9": 9}[name]}
				if name == "6" && r.out[0].Current == 9 {
					want.Current = 9 // checked after 9 reserved k: also a loss
				}
				if r.out[0] != want {
					t.Fatalf("Apply of version %s: %+v, want %+v", name, r.out[0], want)
				}
			}
			checkVersion := func(s *Store) {
				t.Helper()
				row, found, err := s.Get(t.Context(), "t", []byte("k"), 0)
				if err != nil || !found || row.Version != 9 || string(row.Value) != fmt.Sprintf("k@%d", 9) {
					t.Fatalf("Get(k) = %+v, %v, %v; want version 9", row, found, err)
				}
			}
			checkVersion(s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openT(t, dir, tc.opts)
			defer s.Close()
			checkVersion(s)
		})
	}
}
