package reconcile

import (
	"fmt"
	"testing"

	"github.com/wail-cdc/wail/internal/eventbus"
)

// TestRunInterleaved: between any two steps of a run (each log, bus and
// store call), a writer writes or deletes keys (each write's intent logged
// before its store write, as the proxy does), the resolver resolves what
// is logged, or a second reconcile runs whole (the resolver resolves
// whatever is logged at each fence's look at its progress); once the first run ended
// and the resolver resolved everything, every key's last event is its
// stored state (invariant 4), per key versions increase (3), and every
// event's version was stored (2). Pins DESIGN.md's "while writes
// continue" and "two operators at once" (no bug found).
func TestRunInterleaved(t *testing.T) {
	t.Parallel()
	type world struct {
		r      *rig
		stored map[string][]uint64
		next   uint64
	}
	write := func(w *world, k string, del bool) {
		w.next++
		w.r.logIntent(k, w.next)
		w.r.write(k, w.next, del)
		w.stored[k] = append(w.stored[k], w.next)
	}
	actions := []struct {
		name string
		do   func(t *testing.T, w *world)
	}{
		{"write", func(_ *testing.T, w *world) {
			write(w, "behind", false)
			write(w, "lost", true)
			write(w, "new", false)
		}},
		{"write_resolve", func(_ *testing.T, w *world) {
			write(w, "behind", true)
			write(w, "current", false)
			w.r.resolve()
		}},
		{"store_only", func(_ *testing.T, w *world) {
			// A write whose intent was logged long ago and resolved
			// before its row landed is not reconcile's to race; here a
			// row written behind wail's back while reconcile runs.
			w.next++
			w.r.write("lost", w.next, false)
			w.stored["lost"] = append(w.stored["lost"], w.next)
		}},
		{"resolve", func(_ *testing.T, w *world) { w.r.resolve() }},
		{"second_reconcile", func(t *testing.T, w *world) {
			if _, err := Run(t.Context(), w.r.opts(), w.r.table, nil); err != nil {
				t.Errorf("second run: %v", err)
			}
		}},
	}
	for _, a := range actions {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			for at := 1; ; at++ {
				w := &world{r: newRig(t, 2), stored: map[string][]uint64{}, next: 100}
				r := w.r
				r.write("current", 10, false)
				r.publish("current", 10)
				w.stored["current"] = []uint64{10}
				w.stored["behind"] = []uint64{15}
				r.publish("behind", 15)
				r.write("behind", 20, false)
				w.stored["behind"] = append(w.stored["behind"], 20)
				r.write("lost", 30, false)
				w.stored["lost"] = []uint64{30}
				for i := range 4 {
					k := fmt.Sprintf("k%d", i)
					r.write(k, uint64(40+i), false)
					w.stored[k] = []uint64{uint64(40 + i)}
				}
				r.resolveAll()
				// The resolver keeps up: it resolves what is logged
				// whenever a fence asks for its progress.
				r.log.mu.Lock()
				r.log.everyCommitted = r.resolve
				r.log.mu.Unlock()

				f := &faults{at: at}
				f.act = func() { a.do(t, w) }
				o := r.opts()
				fl := faultLog{hookLog: r.log, f: f}
				o.Log, o.Bus, o.Store = fl, eventbus.New(fl), faultStore{Store: r.store, f: f}
				if _, err := Run(t.Context(), o, r.table, nil); err != nil {
					t.Fatalf("step %d: %v", at, err)
				}
				r.resolve()
				evs := r.events()
				for k, vs := range w.stored {
					got := evs[k]
					if len(got) == 0 || got[len(got)-1] != vs[len(vs)-1] {
						t.Errorf("step %d: key %s: events %v, want the last at %d (stored %v)", at, k, got, vs[len(vs)-1], vs)
					}
					for i := 1; i < len(got); i++ {
						if got[i] <= got[i-1] {
							t.Errorf("step %d: key %s: events %v do not increase", at, k, got)
						}
					}
					for _, v := range got {
						found := false
						for _, s := range vs {
							found = found || s == v
						}
						if !found {
							t.Errorf("step %d: key %s: event %d of a version never stored (%v)", at, k, v, vs)
						}
					}
				}
				if !f.hit {
					break
				}
			}
		})
	}
}
