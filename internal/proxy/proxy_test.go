package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/proxy/proxytest"
	"github.com/wail-cdc/wail/internal/store"
)

// world is the log and store under the proxy (package proxytest).
type (
	world   = proxytest.World
	fakeLog = proxytest.Log
	tables  = proxytest.Tables
)

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
	w.Rows = map[string]store.Row{}
	return New(w.Log(), w.Store(), proxytest.TxAndInd(window), clock, Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 10}, m)
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
		notMsg    string // what the error must not claim
		del       bool   // the mutation is a delete
		logged    bool
		stored    bool
		wantCalls []string
	}{
		{name: "intent first, then store", table: "tx", logged: true, stored: true,
			wantCalls: []string{"append:UPSERT", "apply"}},
		{name: "a delete logs a DELETE intent", table: "tx", del: true, logged: true, stored: true,
			wantCalls: []string{"append:DELETE", "apply"}},
		{name: "transactional: log down rejects and leaves the store alone", table: "tx", logFails: true,
			wantErr: ErrUnavailable, wantMsg: "nothing was written", wantCalls: []string{"append-failed"}},
		{name: "independent: log down still writes the store", table: "ind", logFails: true, stored: true,
			wantCalls: []string{"append-failed", "apply"}},
		{name: "store did not apply the write: error and an ABORT", table: "tx", stErr: errNotApplied, logged: true,
			wantErr: ErrUnavailable, wantMsg: "did not apply", wantCalls: []string{"append:UPSERT", "apply-failed", "append:ABORT"}},
		{name: "store outcome unknown: error, no ABORT", table: "tx", stErr: errStoreDown, logged: true,
			wantErr: ErrUnavailable, wantMsg: "outcome is unknown", notMsg: "no event is guaranteed", wantCalls: []string{"append:UPSERT", "apply-failed"}},
		{name: "store deadline mid-write: no ABORT", table: "tx", stErr: errUnknownSent, logged: true,
			wantErr: ErrUnavailable, wantMsg: "outcome is unknown", notMsg: "no event is guaranteed", wantCalls: []string{"append:UPSERT", "apply-failed"}},
		{name: "independent: both down", table: "ind", logFails: true, stErr: errNotApplied,
			wantErr: ErrUnavailable, wantMsg: "did not apply", notMsg: "ABORT", wantCalls: []string{"append-failed", "apply-failed"}},
		{name: "independent: log down, store outcome unknown", table: "ind", logFails: true, stErr: errStoreDown,
			wantErr: ErrUnavailable, wantMsg: "no event is guaranteed", notMsg: "its event follows", wantCalls: []string{"append-failed", "apply-failed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := &world{LogFails: tc.logFails, StErr: tc.stErr}
			p := newProxy(t, w)
			m := Mutation{Table: tc.table, Key: []byte("k"), Value: []byte("v")}
			if tc.del {
				m = Mutation{Table: tc.table, Key: []byte("k"), Delete: true}
			}
			r := p.Write(context.Background(), []Mutation{m})[0]
			if !errors.Is(r.Err, tc.wantErr) || (tc.wantErr == nil && r.Err != nil) || (r.Err != nil && !strings.Contains(r.Err.Error(), tc.wantMsg)) ||
				(r.Err != nil && tc.notMsg != "" && strings.Contains(r.Err.Error(), tc.notMsg)) {
				t.Fatalf("err = %v, want %v saying %q (not %q)", r.Err, tc.wantErr, tc.wantMsg, tc.notMsg)
			}
			if r.IntentLogged != tc.logged || r.Stored != tc.stored || r.Version == 0 {
				t.Fatalf("result %+v, want logged=%v stored=%v", r, tc.logged, tc.stored)
			}
			if strings.Join(w.Calls, ",") != strings.Join(tc.wantCalls, ",") {
				t.Fatalf("calls %v, want %v", w.Calls, tc.wantCalls)
			}
			for _, in := range w.Intents {
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
		// not "create it with `wail table create Orders`", which refuses the name
		{"a name no table can have", Mutation{Table: "Orders", Key: []byte("k")}, ErrUnknownTable, `invalid table name "Orders"`},
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
			if len(w.Calls) != 0 {
				t.Fatalf("rejected mutation reached the log or store: %v", w.Calls)
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
	if got := w.Rows["c"]; !got.Deleted || got.Version != res[2].Version {
		t.Fatalf("delete not stored as a tombstone: %+v", got)
	}
	for _, in := range w.Intents {
		if in.Op == intent.Delete && string(in.Key) != "c" {
			t.Fatalf("unexpected delete intent %+v", in)
		}
	}
}

func TestIntentsNeverCarryValues(t *testing.T) {
	t.Parallel()
	var captured [][]byte
	w := &world{Rows: map[string]store.Row{}}
	clock, _ := hlc.New(1, nil)
	log := captureLog{w.Log(), &captured}
	p := New(log, w.Store(), tables{"tx": {Name: "tx", FailureMode: catalog.Transactional, VisibilityWindow: time.Second}}, clock, Limits{MaxKeyBytes: 8, MaxValueBytes: 64, MaxBatch: 1}, nil)
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
	w.Rows["k"] = store.Row{Version: future}
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
	w := &world{StErr: errNotApplied}
	r := newProxy(t, w).Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("k"), Value: []byte("v")}})[0]
	if len(w.Intents) != 2 {
		t.Fatalf("intents %+v, want the upsert and its ABORT", w.Intents)
	}
	up, ab := w.Intents[0], w.Intents[1]
	id := fmt.Sprintf("3-%d", r.Version)
	if up.Op != intent.Upsert || up.ID != id || ab.Op != intent.Abort || ab.ID != id+"-abort" {
		t.Fatalf("intents %+v and %+v, want ids %s and %s-abort", up, ab, id, id)
	}
	for _, in := range w.Intents {
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
	w := &world{StErr: errNotApplied, OnApply: cancel}
	p := newProxy(t, w)
	start := time.Now()
	p.Write(ctx, []Mutation{{Table: "tx", Key: []byte("k"), Value: []byte("v")}})
	end := time.Now()
	if got := strings.Join(w.Calls, ","); got != "append:UPSERT,apply-failed,append:ABORT" {
		t.Fatalf("calls %s, want the ABORT appended after the client left", got)
	}
	if d := w.AppendDeadline; d.Before(start.Add(p.abortTimeout)) || d.After(end.Add(p.abortTimeout)) || p.abortTimeout != 5*time.Second {
		t.Fatalf("ABORT deadline %s after the write began, want abortTimeout (%s)", d.Sub(start), p.abortTimeout)
	}
}

// TestIntentRecordsHoldNoRequestBytes: the records the proxy hands the
// log (an intent, and the ABORT after a store write that did not apply)
// share no memory with the mutations, whose keys and values are slices of
// one buffer per request (api's wire codec): a log may hold records after
// Append returns (Kafka's producer does until the broker answers), and a
// record key into the request would keep the whole request alive.
func TestIntentRecordsHoldNoRequestBytes(t *testing.T) {
	t.Parallel()
	w := &world{StErr: errNotApplied}
	var kept []*intentlog.Record
	p := New(keepLog{w.Log(), &kept}, w.Store(), proxytest.TxAndInd(time.Second), mustClock(t), Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 10}, nil)
	req := []byte("k1v1k2v2") // one buffer, as the wire codec decodes a request
	muts := []Mutation{{Table: "tx", Key: req[0:2:2], Value: req[2:4:4]}, {Table: "tx", Key: req[4:6:6], Value: req[6:8:8]}}
	p.Write(context.Background(), muts)
	if len(kept) != 4 {
		t.Fatalf("%d records appended, want 2 intents and their 2 ABORTs", len(kept))
	}
	clear(req) // the request is gone; its memory may be anything now
	for i, r := range kept {
		in, err := intent.UnmarshalIntent(r.Value)
		if want := fmt.Sprintf("k%d", i%2+1); err != nil || string(r.Key) != want || string(in.Key) != want {
			t.Fatalf("record %d after the request's memory changed: key %q, intent %+v, %v; want key %q", i, r.Key, in, err, want)
		}
	}
}

// keepLog is a log that keeps the records it was given.
type keepLog struct {
	fakeLog
	kept *[]*intentlog.Record
}

func (k keepLog) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	*k.kept = append(*k.kept, recs...)
	return k.fakeLog.Append(ctx, topic, recs)
}

func mustClock(t *testing.T) *hlc.Clock {
	t.Helper()
	clock, err := hlc.New(3, nil)
	if err != nil {
		t.Fatal(err)
	}
	return clock
}

// TestIntentRecordAllocs: an intent record costs three allocations: its
// id (built in place, not assembled from pieces: an ABORT's took 5), its
// encoding and key (one buffer), and the record.
func TestIntentRecordAllocs(t *testing.T) {
	p := newProxy(t, &world{})
	key, now := []byte("key"), time.Now()
	for _, op := range []intent.Op{intent.Upsert, intent.Abort} {
		if n := testing.AllocsPerRun(50, func() { _ = p.intentRecord("tx", key, op, 1<<62, now, "") }); n > 3 {
			t.Errorf("op %v: %v allocations per intent record, want at most 3", op, n)
		}
	}
}
