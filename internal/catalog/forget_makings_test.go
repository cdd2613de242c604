package catalog

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestForgetMakings: a reload forgets (and ends) the makings begun before
// it whose table is not theirs to serve any more: gone, damaged, neither
// ready nor dropping, or created again; it keeps those of a table still
// ready or dropping as they were made for, and any begun after the reload
// read the entries. A kept making goes on, so one that takes longer than a
// refresh finishes.
func TestForgetMakings(t *testing.T) {
	t.Parallel()
	t1 := time.Unix(1000, 0)
	began := time.Unix(2000, 0)
	ready := entry{t: Table{Name: "x", State: Ready, CreatedAt: t1}}
	with := func(f func(*entry)) *entry { e := ready; f(&e); return &e }
	for _, tc := range []struct {
		name   string
		read   *entry // nil: no entry of the name
		after  bool   // the making began after the reload read the entries
		forget bool
	}{
		{"ready as made for", &ready, false, false},
		{"dropping as made for", with(func(e *entry) { e.t.State = Dropping }), false, false},
		{"gone", nil, false, true},
		{"damaged", &entry{t: Table{Name: "x"}, bad: errors.New("damaged")}, false, true},
		{"deleting", with(func(e *entry) { e.t.State = Deleting }), false, true},
		{"creating", with(func(e *entry) { e.t.State = Creating }), false, true},
		{"created again", with(func(e *entry) { e.t.CreatedAt = t1.Add(time.Second) }), false, true},
		{"gone, begun after the reload", nil, true, false},
		{"created again, begun after the reload", with(func(e *entry) { e.t.CreatedAt = t1.Add(time.Second) }), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			m := &making{createdAt: t1, began: began.Add(-time.Second), done: make(chan struct{}), cancel: cancel}
			if tc.after {
				m.began = began.Add(time.Second)
			}
			c := &Catalog{making: map[string]*making{"x": m}}
			var entries []entry
			if tc.read != nil {
				entries = append(entries, *tc.read)
			}
			c.forgetMakings(entries, began)
			_, kept := c.making["x"]
			if kept == tc.forget {
				t.Fatalf("making kept %v, want %v", kept, !tc.forget)
			}
			if ended := mctx.Err() != nil; ended != tc.forget {
				t.Fatalf("making ended %v, want %v", ended, tc.forget)
			}
		})
	}
}
