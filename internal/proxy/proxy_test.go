package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
)

// world records the order of calls across the fake log and store.
type world struct {
	mu       sync.Mutex
	calls    []string
	intents  []intent.Intent
	rows     map[string]store.Row
	logFails bool
	stErr    error // what Apply fails with, nil: it works
	logDelay time.Duration
	logBlock bool // Append waits until its ctx ends (a broker that does not answer)
	// deadlines of the last Append and Apply (zero: none)
	appendDeadline, applyDeadline time.Time
	abortFails                    bool     // an ABORT append fails (the others as logFails says)
	levels                        []string // the store's read levels (nil: one, "local")
	getErr                        error    // what Get fails with
	gotLevel                      store.Level
	onApply                       func() // called as Apply begins
	applyHonoursCtx               bool   // Apply fails once its ctx ended
}

type fakeLog struct{ w *world }

func (l fakeLog) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	if err := ctx.Err(); err != nil {
		l.w.mu.Lock()
		defer l.w.mu.Unlock()
		l.w.calls = append(l.w.calls, "append-canceled")
		return err
	}
	// After logDelay the log takes the intents whatever the deadline was:
	// a log that overran it.
	if l.w.logDelay > 0 {
		time.Sleep(l.w.logDelay)
	}
	l.w.mu.Lock()
	defer l.w.mu.Unlock()
	l.w.appendDeadline, _ = ctx.Deadline()
	if l.w.logBlock {
		l.w.mu.Unlock()
		<-ctx.Done()
		l.w.mu.Lock()
		l.w.calls = append(l.w.calls, "append-cut-off")
		return ctx.Err()
	}
	if l.w.logFails || (l.w.abortFails && isAbort(recs)) {
		l.w.calls = append(l.w.calls, "append-failed")
		return errors.New("log down")
	}
	for _, r := range recs {
		in, err := intent.UnmarshalIntent(r.Value)
		if err != nil {
			return err
		}
		if !bytes.Equal(r.Key, in.Key) || topic != intent.Topic(in.Table) {
			return errors.New("record key or topic does not match the intent")
		}
		l.w.intents = append(l.w.intents, in)
		l.w.calls = append(l.w.calls, "append:"+in.Op.String())
	}
	return nil
}

type fakeStore struct{ w *world }

func (s fakeStore) Apply(ctx context.Context, _ string, muts []store.Mutation) ([]store.Outcome, error) {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	s.w.applyDeadline, _ = ctx.Deadline()
	if s.w.onApply != nil {
		s.w.onApply()
	}
	if err := ctx.Err(); err != nil && s.w.applyHonoursCtx {
		s.w.calls = append(s.w.calls, "apply-canceled")
		return nil, err
	}
	if s.w.stErr != nil {
		s.w.calls = append(s.w.calls, "apply-failed")
		return nil, s.w.stErr
	}
	outs := make([]store.Outcome, len(muts))
	for i, m := range muts {
		cur := s.w.rows[string(m.Key)]
		if m.Version > cur.Version {
			s.w.rows[string(m.Key)] = store.Row{Value: m.Value, Version: m.Version, Deleted: m.Delete}
			outs[i] = store.Outcome{Applied: true, Current: m.Version}
		} else {
			outs[i] = store.Outcome{Current: cur.Version}
		}
		s.w.calls = append(s.w.calls, "apply")
	}
	return outs, nil
}

func (s fakeStore) Get(_ context.Context, _ string, key []byte, level store.Level) (store.Row, bool, error) {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	s.w.gotLevel = level
	if s.w.getErr != nil {
		return store.Row{}, false, s.w.getErr
	}
	r, ok := s.w.rows[string(key)]
	return r, ok, nil
}

func (s fakeStore) Levels() []string {
	if s.w.levels == nil {
		return []string{"local"}
	}
	return s.w.levels
}

// isAbort says whether recs are ABORT intents.
func isAbort(recs []*intentlog.Record) bool {
	in, err := intent.UnmarshalIntent(recs[0].Value)
	return err == nil && in.Op == intent.Abort
}

type tables map[string]catalog.Table

func (t tables) Get(name string) (catalog.Table, bool) { v, ok := t[name]; return v, ok }

// newProxy is a proxy whose tables tx (transactional) and ind
// (independent) have a visibility window of a second.
func newProxy(t *testing.T, w *world) *Proxy { return newWindowProxy(t, w, time.Second) }

// newWindowProxy is newProxy with the visibility window window.
func newWindowProxy(t *testing.T, w *world, window time.Duration) *Proxy {
	t.Helper()
	return newMeteredProxy(t, w, window, nil)
}

// newMeteredProxy is newWindowProxy with the metrics m.
func newMeteredProxy(t *testing.T, w *world, window time.Duration, m *Metrics) *Proxy {
	t.Helper()
	clock, err := hlc.New(3, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.rows = map[string]store.Row{}
	tbs := tables{
		"tx":  {Name: "tx", FailureMode: catalog.Transactional, Partitions: 1, VisibilityWindow: window},
		"ind": {Name: "ind", FailureMode: catalog.Independent, Partitions: 1, VisibilityWindow: window},
	}
	return New(fakeLog{w}, fakeStore{w}, tbs, clock, Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 10}, m)
}

var (
	errStoreDown   = errors.New("store down")                                    // outcome unknown
	errNotApplied  = fmt.Errorf("%w: rolled back", store.ErrNotApplied)          // definite
	errUnknownSent = fmt.Errorf("connection lost: %w", context.DeadlineExceeded) // outcome unknown
)

func TestWritePath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		table     string
		logFails  bool
		stErr     error
		wantErr   error
		wantMsg   string
		logged    bool
		stored    bool
		wantCalls []string
	}{
		{name: "intent first, then store", table: "tx", logged: true, stored: true,
			wantCalls: []string{"append:UPSERT", "apply"}},
		{name: "transactional: log down rejects and leaves the store alone", table: "tx", logFails: true,
			wantErr: ErrUnavailable, wantMsg: "nothing was written", wantCalls: []string{"append-failed"}},
		{name: "independent: log down still writes the store", table: "ind", logFails: true, stored: true,
			wantCalls: []string{"append-failed", "apply"}},
		{name: "store did not apply the write: error and an ABORT", table: "tx", stErr: errNotApplied, logged: true,
			wantErr: ErrUnavailable, wantMsg: "did not apply", wantCalls: []string{"append:UPSERT", "apply-failed", "append:ABORT"}},
		{name: "store outcome unknown: error, no ABORT", table: "tx", stErr: errStoreDown, logged: true,
			wantErr: ErrUnavailable, wantMsg: "outcome is unknown", wantCalls: []string{"append:UPSERT", "apply-failed"}},
		{name: "store deadline mid-write: no ABORT", table: "tx", stErr: errUnknownSent, logged: true,
			wantErr: ErrUnavailable, wantMsg: "outcome is unknown", wantCalls: []string{"append:UPSERT", "apply-failed"}},
		{name: "independent: both down", table: "ind", logFails: true, stErr: errNotApplied,
			wantErr: ErrUnavailable, wantMsg: "did not apply", wantCalls: []string{"append-failed", "apply-failed"}},
		{name: "independent: log down, store outcome unknown", table: "ind", logFails: true, stErr: errStoreDown,
			wantErr: ErrUnavailable, wantMsg: "no event is guaranteed", wantCalls: []string{"append-failed", "apply-failed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := &world{logFails: tc.logFails, stErr: tc.stErr}
			p := newProxy(t, w)
			r := p.Write(context.Background(), []Mutation{{Table: tc.table, Key: []byte("k"), Value: []byte("v")}})[0]
			if !errors.Is(r.Err, tc.wantErr) || (tc.wantErr == nil && r.Err != nil) || (r.Err != nil && !strings.Contains(r.Err.Error(), tc.wantMsg)) {
				t.Fatalf("err = %v, want %v saying %q", r.Err, tc.wantErr, tc.wantMsg)
			}
			if r.IntentLogged != tc.logged || r.Stored != tc.stored || r.Version == 0 {
				t.Fatalf("result %+v, want logged=%v stored=%v", r, tc.logged, tc.stored)
			}
			if strings.Join(w.calls, ",") != strings.Join(tc.wantCalls, ",") {
				t.Fatalf("calls %v, want %v", w.calls, tc.wantCalls)
			}
			for _, in := range w.intents {
				if in.Version != r.Version {
					t.Fatalf("intent version %d, result version %d", in.Version, r.Version)
				}
			}
		})
	}
}

func TestLimitsAndUnknownTables(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		m       Mutation
		wantErr error
		wantMsg string
	}{
		{"unknown table", Mutation{Table: "nope", Key: []byte("k")}, ErrUnknownTable, `unknown table "nope"`},
		{"empty key", Mutation{Table: "tx"}, ErrInvalid, "key is empty"},
		{"key over the limit", Mutation{Table: "tx", Key: []byte("123456789")}, ErrInvalid, "key is 9 bytes, the limit is 8"},
		{"value over the limit", Mutation{Table: "tx", Key: []byte("k"), Value: make([]byte, 17)}, ErrInvalid, "value is 17 bytes, the limit is 16"},
		{"key at the limit", Mutation{Table: "tx", Key: []byte("12345678"), Value: make([]byte, 16)}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := &world{}
			r := newProxy(t, w).Write(context.Background(), []Mutation{tc.m})[0]
			if tc.wantErr == nil {
				if r.Err != nil || !r.Stored {
					t.Fatalf("result %+v", r)
				}
				return
			}
			if !errors.Is(r.Err, tc.wantErr) || !strings.Contains(r.Err.Error(), tc.wantMsg) {
				t.Fatalf("err = %v, want %v containing %q", r.Err, tc.wantErr, tc.wantMsg)
			}
			if len(w.calls) != 0 {
				t.Fatalf("rejected mutation reached the log or store: %v", w.calls)
			}
		})
	}
}

func TestBatchMixesGoodAndBadMutations(t *testing.T) {
	t.Parallel()
	w := &world{}
	p := newProxy(t, w)
	res := p.Write(context.Background(), []Mutation{
		{Table: "tx", Key: []byte("a"), Value: []byte("1")},
		{Table: "nope", Key: []byte("b")},
		{Table: "tx", Key: []byte("c"), Delete: true},
		{Table: "ind", Key: []byte("d"), Value: []byte("4")},
	})
	if res[0].Err != nil || res[2].Err != nil || res[3].Err != nil || !errors.Is(res[1].Err, ErrUnknownTable) {
		t.Fatalf("results %+v", res)
	}
	if res[1].Version != 0 {
		t.Fatalf("a rejected mutation got version %d", res[1].Version)
	}
	if !(res[0].Version < res[2].Version && res[2].Version < res[3].Version) {
		t.Fatalf("versions not increasing in batch order: %d %d %d", res[0].Version, res[2].Version, res[3].Version)
	}
	if got := w.rows["c"]; !got.Deleted || got.Version != res[2].Version {
		t.Fatalf("delete not stored as a tombstone: %+v", got)
	}
	for _, in := range w.intents {
		if in.Op == intent.Delete && string(in.Key) != "c" {
			t.Fatalf("unexpected delete intent %+v", in)
		}
	}
}

func TestIntentsNeverCarryValues(t *testing.T) {
	t.Parallel()
	var captured [][]byte
	w := &world{rows: map[string]store.Row{}}
	clock, _ := hlc.New(1, nil)
	log := captureLog{fakeLog{w}, &captured}
	p := New(log, fakeStore{w}, tables{"tx": {Name: "tx", FailureMode: catalog.Transactional, VisibilityWindow: time.Second}}, clock, Limits{MaxKeyBytes: 8, MaxValueBytes: 64, MaxBatch: 1}, nil)
	secret := []byte("SECRET-VALUE-BYTES")
	p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("k"), Value: secret}})
	if len(captured) != 1 || bytes.Contains(captured[0], secret) {
		t.Fatalf("intent record carries the value: %q", captured)
	}
}

type captureLog struct {
	fakeLog
	out *[][]byte
}

func (c captureLog) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	for _, r := range recs {
		*c.out = append(*c.out, r.Value)
	}
	return c.fakeLog.Append(ctx, topic, recs)
}

func TestSupersededWriteMovesTheClock(t *testing.T) {
	t.Parallel()
	w := &world{}
	p := newProxy(t, w)
	future := hlc.At(time.Now().Add(time.Hour))
	w.rows["k"] = store.Row{Version: future}
	r := p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("k"), Value: []byte("v")}})[0]
	if r.Err != nil || r.Stored || !r.Superseded {
		t.Fatalf("result %+v, want superseded", r)
	}
	r = p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("k"), Value: []byte("v2")}})[0]
	if !r.Stored || r.Version <= future {
		t.Fatalf("after a superseded write the clock should follow the newer version: %+v (newer %d)", r, future)
	}
}

// TestAbortIntent: the ABORT of a write that the store did not apply names
// the same table, key, version and proxy as its intent, with an id of its
// own ("<proxy>-<version>-abort"), so the resolver settles that version
// and keeps the two apart.
func TestAbortIntent(t *testing.T) {
	t.Parallel()
	w := &world{stErr: errNotApplied}
	r := newProxy(t, w).Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("k"), Value: []byte("v")}})[0]
	if len(w.intents) != 2 {
		t.Fatalf("intents %+v, want the upsert and its ABORT", w.intents)
	}
	up, ab := w.intents[0], w.intents[1]
	id := fmt.Sprintf("3-%d", r.Version)
	if up.Op != intent.Upsert || up.ID != id || ab.Op != intent.Abort || ab.ID != id+"-abort" {
		t.Fatalf("intents %+v and %+v, want ids %s and %s-abort", up, ab, id, id)
	}
	for _, in := range w.intents {
		if in.Table != "tx" || string(in.Key) != "k" || in.Version != r.Version || in.ProxyID != 3 || in.CreatedAt.IsZero() {
			t.Fatalf("intent %+v", in)
		}
	}
}

// TestAbortOutlivesTheClient: the ABORT of a write the store did not apply
// is appended on a context of its own, bounded by abortTimeout, so a
// client that went away during the store write does not leave the
// resolver waiting out the window.
func TestAbortOutlivesTheClient(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &world{stErr: errNotApplied, onApply: cancel}
	p := newProxy(t, w)
	start := time.Now()
	p.Write(ctx, []Mutation{{Table: "tx", Key: []byte("k"), Value: []byte("v")}})
	end := time.Now()
	if got := strings.Join(w.calls, ","); got != "append:UPSERT,apply-failed,append:ABORT" {
		t.Fatalf("calls %s, want the ABORT appended after the client left", got)
	}
	if d := w.appendDeadline; d.Before(start.Add(p.abortTimeout)) || d.After(end.Add(p.abortTimeout)) || p.abortTimeout != 5*time.Second {
		t.Fatalf("ABORT deadline %s after the write began, want abortTimeout (%s)", d.Sub(start), p.abortTimeout)
	}
}
