package proxy

import (
	"context"
	"sync"
	"testing"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/landing"
)

// landingLog records, at each append, whether the landing set held the
// versions of the intents appended.
type landingLog struct {
	fakeLog
	ws      *landing.Writes
	mu      *sync.Mutex
	pending *[]bool
}

func (l landingLog) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	for _, r := range recs {
		in, err := intent.UnmarshalIntent(r.Value)
		if err != nil {
			return err
		}
		l.mu.Lock()
		*l.pending = append(*l.pending, l.ws.Pending(in.Table, in.Version) != nil)
		l.mu.Unlock()
	}
	return l.fakeLog.Append(ctx, topic, recs)
}

// TestLandingSpansTheWrite: a store write is in the landing set from
// before its intents are appended until the write returned, whatever
// happened to it (stored, not applied with an ABORT after it, the log
// down), so that a resolver in the process never holds a read for ever.
func TestLandingSpansTheWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		set      func(w *world)
		wantCall string // the call the write must have made
		wantRows bool   // the ended write hands its rows over
	}{
		{"stored", func(*world) {}, "apply", true},
		{"not applied, then an ABORT", func(w *world) { w.StErr = errNotApplied }, "append:ABORT", false},
		{"outcome unknown", func(w *world) { w.StErr = errStoreDown }, "apply-failed", false},
		{"the log down", func(w *world) { w.LogFails = true }, "append-failed", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := &world{}
			p := newProxy(t, w)
			ws := landing.New()
			var mu sync.Mutex
			var atAppend, atApply []bool
			p.log = landingLog{fakeLog: w.Log(), ws: ws, mu: &mu, pending: &atAppend}
			p.WithLanding(ws)
			var versions []uint64
			var lw *landing.Write
			w.OnApply = func() { // holds w.Mu: the versions are the last intents
				for _, in := range w.Intents[len(w.Intents)-2:] {
					atApply = append(atApply, ws.Pending("tx", in.Version) != nil)
					lw = ws.Pending("tx", in.Version)
				}
			}
			tc.set(w)
			res := p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("a")}, {Table: "tx", Key: []byte("b")}})
			for _, r := range res {
				versions = append(versions, r.Version)
			}
			w.Mu.Lock()
			calls := append([]string(nil), w.Calls...)
			w.Mu.Unlock()
			found := false
			for _, c := range calls {
				found = found || c == tc.wantCall
			}
			if !found {
				t.Fatalf("calls %v: no %q", calls, tc.wantCall)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(atAppend) == 0 {
				t.Fatal("no intent appended")
			}
			for _, held := range append(atAppend, atApply...) { // an ABORT's append too
				if !held {
					t.Errorf("calls %v: a version was not in the landing set at its append or store write (%v, %v)", calls, atAppend, atApply)
				}
			}
			for _, v := range versions {
				if ws.Pending("tx", v) != nil {
					t.Errorf("version %d still in flight after Write returned", v)
				}
			}
			if n := ws.InFlight("tx"); n != 0 {
				t.Errorf("%d writes in flight after Write returned", n)
			}
			if lw == nil {
				return // the store was never written
			}
			row, ok := lw.Row([]byte("b"))
			if ok != tc.wantRows || (ok && (row.Version != versions[1] || row.Deleted)) {
				t.Errorf("the ended write hands over %+v, %v for b (version %d); want a row: %v", row, ok, versions[1], tc.wantRows)
			}
		})
	}
}
