package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/store"
)

func serve(t *testing.T, w *world) string {
	t.Helper()
	return serveService(t, NewProducerService(newProxy(t, w)))
}

func serveService(t *testing.T, svc *ProducerService) string {
	t.Helper()
	path, h := wailv1connect.NewProducerServiceHandler(svc)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// resultOf returns the WriteResult detail of a failed call, or nil.
func resultOf(t *testing.T, err error) *wailv1.WriteResult {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("not a connect error: %v", err)
	}
	for _, d := range ce.Details() {
		v, derr := d.Value()
		if derr != nil {
			t.Fatalf("detail %s: %v", d.Type(), derr)
		}
		if r, ok := v.(*wailv1.WriteResult); ok {
			return r
		}
	}
	return nil
}

// TestFailedWriteCarriesItsVersion: a Put or Delete that failed after its
// version was stamped answers the version (and intent_logged, stored) as a
// wail.v1.WriteResult error detail, so the client can match the ABORT
// intent and any event to its failed write.
func TestFailedWriteCarriesItsVersion(t *testing.T) {
	t.Parallel()
	for _, protocol := range []struct {
		name string
		opts []connect.ClientOption
	}{{"connect+proto", nil}, {"connect+json", []connect.ClientOption{connect.WithProtoJSON()}}, {"grpc-web", []connect.ClientOption{connect.WithGRPCWeb()}}} {
		t.Run(protocol.name, func(t *testing.T) {
			t.Parallel()
			w := &world{StErr: errNotApplied}
			pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, serve(t, w), protocol.opts...)
			ctx := context.Background()
			_, putErr := pc.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "tx", Key: []byte("k"), Value: []byte("v")}))
			_, delErr := pc.Delete(ctx, connect.NewRequest(&wailv1.DeleteRequest{Table: "tx", Key: []byte("k")}))
			var versions []uint64
			for _, err := range []error{putErr, delErr} {
				if connect.CodeOf(err) != connect.CodeUnavailable {
					t.Fatalf("err %v, want unavailable", err)
				}
				r := resultOf(t, err)
				if r == nil || r.Version == 0 || !r.IntentLogged || r.Stored {
					t.Fatalf("detail %+v, want the stamped version, intent_logged, not stored", r)
				}
				versions = append(versions, r.Version)
			}
			w.Mu.Lock()
			defer w.Mu.Unlock()
			var aborted []uint64
			for _, in := range w.Intents {
				if in.Op == intent.Abort {
					aborted = append(aborted, in.Version)
				}
			}
			if len(aborted) != 2 || aborted[0] != versions[0] || aborted[1] != versions[1] {
				t.Fatalf("ABORT intents for %v, the errors carried %v", aborted, versions)
			}
		})
	}
}

// TestUnknownOutcomeCarriesItsVersion: when the store write's outcome is
// unknown (no ABORT follows), the version in the error is how the client
// tells later whether its write landed (a read or an event of it).
func TestUnknownOutcomeCarriesItsVersion(t *testing.T) {
	t.Parallel()
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, serve(t, &world{StErr: errStoreDown}))
	_, err := pc.Put(context.Background(), connect.NewRequest(&wailv1.PutRequest{Table: "tx", Key: []byte("k"), Value: []byte("v")}))
	if r := resultOf(t, err); connect.CodeOf(err) != connect.CodeUnavailable || r == nil || r.Version == 0 || !r.IntentLogged {
		t.Fatalf("err %v, detail %+v", err, r)
	}
}

// TestRejectedWriteHasNoVersion: a mutation refused before it was stamped
// carries no WriteResult detail.
func TestRejectedWriteHasNoVersion(t *testing.T) {
	t.Parallel()
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, serve(t, &world{}))
	_, err := pc.Put(context.Background(), connect.NewRequest(&wailv1.PutRequest{Table: "tx"}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || resultOf(t, err) != nil {
		t.Fatalf("err %v, detail %+v", err, resultOf(t, err))
	}
}

// TestFailedWriteDetailInJSON: curl users see the detail's JSON under
// details[].debug, as README shows.
func TestFailedWriteDetailInJSON(t *testing.T) {
	t.Parallel()
	url := serve(t, &world{StErr: errNotApplied})
	resp, err := http.Post(url+"/wail.v1.ProducerService/Put", "application/json", strings.NewReader(`{"table":"tx","key":"aw==","value":"dg=="}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`"code":"unavailable"`, `"type":"wail.v1.WriteResult"`, `"debug":{"version":"`, `"intentLogged":true`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("body %s lacks %s", b, want)
		}
	}
}

// TestAdmitGatesWrites: while admit refuses (the proxy id's lease is not
// valid), Put, Delete and Write answer Unavailable with its reason before
// a version is stamped: nothing reaches the log or the store. Reads are
// not gated.
func TestAdmitGatesWrites(t *testing.T) {
	t.Parallel()
	w := &world{}
	var refuse atomic.Bool
	refuse.Store(true)
	url := serveService(t, NewProducerService(newProxy(t, w)).WithAdmit(func() error {
		if refuse.Load() {
			return errors.New("the lease of proxy id 3 expired")
		}
		return nil
	}))
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	ctx := context.Background()
	_, putErr := pc.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "tx", Key: []byte("k"), Value: []byte("v")}))
	_, delErr := pc.Delete(ctx, connect.NewRequest(&wailv1.DeleteRequest{Table: "tx", Key: []byte("k")}))
	_, writeErr := pc.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: []*wailv1.Mutation{{Table: "tx", Key: []byte("k")}}}))
	for _, err := range []error{putErr, delErr, writeErr} {
		if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "lease of proxy id 3 expired") || resultOf(t, err) != nil {
			t.Fatalf("err %v, want unavailable with the reason and no version", err)
		}
	}
	if _, err := pc.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "tx", Key: []byte("k")})); err != nil {
		t.Fatalf("a read while writes are refused: %v", err)
	}
	w.Mu.Lock()
	calls := len(w.Calls)
	w.Mu.Unlock()
	if calls != 0 {
		t.Fatalf("refused writes reached the log or the store: %v", w.Calls)
	}
	refuse.Store(false)
	if _, err := pc.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "tx", Key: []byte("k"), Value: []byte("v")})); err != nil {
		t.Fatalf("admitted again: %v", err)
	}
}

// TestOverloadedWriteOnTheWire: a write the proxy's admission refuses
// answers resource_exhausted with its retry hint as a wail.v1.Error
// detail and a google.rpc.RetryInfo, in a batch as the mutation's error with the hint.
func TestOverloadedWriteOnTheWire(t *testing.T) {
	t.Parallel()
	w := &world{}
	p := newProxy(t, w)
	a := proxy.NewAdmission(10)
	a.Observe("tx", 10, 0, time.Now())
	p.WithAdmission(a)
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, serveService(t, NewProducerService(p)))
	ctx := context.Background()
	_, err := pc.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "tx", Key: []byte("a")}))
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeResourceExhausted {
		t.Fatalf("Put: %v, want resource_exhausted", err)
	}
	var hint int64
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if e, ok := v.(*wailv1.Error); ok {
				hint = e.RetryAfterMs
			}
		}
	}
	if hint <= 0 || resultOf(t, err) != nil {
		t.Fatalf("Put: hint %dms, result %+v; want a hint and no version", hint, resultOf(t, err))
	}
	if d, ok := retryInfo(t, err); !ok || d != time.Duration(hint)*time.Millisecond {
		t.Fatalf("Put: RetryInfo %s (%v), want the hint, %dms", d, ok, hint)
	}
	resp, err := pc.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: []*wailv1.Mutation{{Table: "tx", Key: []byte("a")}, {Table: "ind", Key: []byte("b")}}}))
	if err != nil {
		t.Fatal(err)
	}
	if e := resp.Msg.Results[0].Error; e.GetCode() != "resource_exhausted" || e.GetRetryAfterMs() != hint {
		t.Fatalf("batch: %v, want resource_exhausted with a %dms hint", e, hint)
	}
	if r := resp.Msg.Results[1]; r.Error != nil || !r.Stored {
		t.Fatalf("the other table: %+v", r)
	}
}

func TestWriteCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want connect.Code
	}{
		{fmt.Errorf("%w %q", proxy.ErrUnknownTable, "t"), connect.CodeNotFound},
		{fmt.Errorf("%w: key is empty", proxy.ErrInvalid), connect.CodeInvalidArgument},
		{fmt.Errorf("%w: log down", proxy.ErrUnavailable), connect.CodeUnavailable},
		{fmt.Errorf("table tx: %w", proxy.ErrOverloaded), connect.CodeResourceExhausted},
		{fmt.Errorf("%w: record too large", proxy.ErrLogRefused), connect.CodeFailedPrecondition},
		{fmt.Errorf("append: %w", context.Canceled), connect.CodeCanceled},
		{fmt.Errorf("append: %w", context.DeadlineExceeded), connect.CodeDeadlineExceeded},
		{errors.New("anything else"), connect.CodeUnavailable},
	} {
		if got := writeCode(tc.err); got != tc.want {
			t.Errorf("writeCode(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestWriteRPC: a batch answers one result per mutation, in order, each
// with its own error (code and message) or none; a delete writes a
// tombstone; a batch over limits.max_batch_mutations or with an op that is
// not a write is refused whole, before anything is written.
func TestWriteRPC(t *testing.T) {
	t.Parallel()
	w := &world{}
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, serve(t, w))
	ctx := context.Background()
	resp, err := pc.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: []*wailv1.Mutation{
		{Table: "tx", Key: []byte("a"), Value: []byte("1")},
		{Table: "nope", Key: []byte("b")},
		{Table: "ind", Key: []byte("c"), Op: wailv1.Op_OP_DELETE},
		{Table: "tx", Key: []byte("d"), Value: []byte("4"), Op: wailv1.Op_OP_UPSERT},
	}}))
	if err != nil {
		t.Fatal(err)
	}
	res := resp.Msg.Results
	if len(res) != 4 {
		t.Fatalf("%d results, want 4", len(res))
	}
	for _, i := range []int{0, 2, 3} {
		if r := res[i]; r.Error != nil || !r.Stored || !r.IntentLogged || r.Version == 0 {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if r := res[1]; r.Error.GetCode() != "not_found" || !strings.Contains(r.Error.GetMessage(), `unknown table "nope"`) || r.Version != 0 {
		t.Fatalf("result 1: %+v, want not_found", r)
	}
	w.Mu.Lock()
	a, c, d := w.Rows["a"], w.Rows["c"], w.Rows["d"]
	w.Mu.Unlock()
	if a.Deleted || string(a.Value) != "1" || !c.Deleted || c.Version != res[2].Version || d.Deleted || string(d.Value) != "4" {
		t.Fatalf("rows a %+v, c %+v, d %+v; want c a tombstone", a, c, d)
	}

	batch := func(n int) []*wailv1.Mutation {
		var out []*wailv1.Mutation
		for i := range n {
			out = append(out, &wailv1.Mutation{Table: "tx", Key: []byte{'k', byte('0' + i)}})
		}
		return out
	}
	if resp, err := pc.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: batch(10)})); err != nil || len(resp.Msg.Results) != 10 {
		t.Fatalf("a batch at the limit: %v", err)
	}
	w.Mu.Lock()
	before := len(w.Calls)
	w.Mu.Unlock()
	_, err = pc.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: batch(11)}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "batch has 11 mutations, the limit is 10 (limits.max_batch_mutations)") {
		t.Fatalf("a batch over the limit: %v", err)
	}
	abort := batch(2)
	abort[1].Op = wailv1.Op_OP_ABORT
	_, err = pc.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: abort}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "mutation 1: op OP_ABORT is not a write") {
		t.Fatalf("an ABORT op: %v", err)
	}
	w.Mu.Lock()
	defer w.Mu.Unlock()
	if len(w.Calls) != before {
		t.Fatalf("refused batches were written: %v", w.Calls[before:])
	}
}

// TestGetRPC: Get reads the store at its strongest level and tells a
// value, a tombstone (deleted, with its version) and nothing apart.
func TestGetRPC(t *testing.T) {
	t.Parallel()
	w := &world{Levels: []string{"replica", "primary"}}
	p := newProxy(t, w)
	w.Rows["v"] = store.Row{Value: []byte("x"), Version: 7}
	w.Rows["gone"] = store.Row{Version: 9, Deleted: true}
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, serveService(t, NewProducerService(p)))
	ctx := context.Background()
	get := func(table, key string) (*wailv1.GetResponse, error) {
		resp, err := pc.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: table, Key: []byte(key)}))
		if err != nil {
			return nil, err
		}
		return resp.Msg, nil
	}
	for _, tc := range []struct {
		key  string
		want *wailv1.GetResponse
	}{
		{"v", &wailv1.GetResponse{Found: true, Value: []byte("x"), Version: 7}},
		{"gone", &wailv1.GetResponse{Version: 9, Deleted: true}},
		{"none", &wailv1.GetResponse{}},
	} {
		got, err := get("tx", tc.key)
		if err != nil || got.Found != tc.want.Found || string(got.Value) != string(tc.want.Value) || got.Version != tc.want.Version || got.Deleted != tc.want.Deleted {
			t.Errorf("get %s: %+v, %v; want %+v", tc.key, got, err, tc.want)
		}
	}
	w.Mu.Lock()
	level := w.GotLevel
	w.Mu.Unlock()
	if level != 1 {
		t.Errorf("read at level %d, want 1 (primary, the strongest)", level)
	}
	if _, err := get("nope", "k"); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("unknown table: %v", err)
	}
	if _, err := get("tx", ""); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("empty key: %v", err)
	}
	// A JSON form asked of a table whose values are not typed is the
	// request's fault, said as such (not as an invalid mutation: Get
	// mutates nothing).
	_, err := pc.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "tx", Key: []byte("v"), ValueJson: true}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "table tx is not typed: its values have no JSON form") ||
		strings.Contains(err.Error(), "mutation") {
		t.Errorf("value_json of an untyped table: %v", err)
	}
	w.Mu.Lock()
	w.GetErr = errors.New("replica gone")
	w.Mu.Unlock()
	if _, err := get("tx", "v"); connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "read tx: replica gone") {
		t.Errorf("store error: %v", err)
	}
}

// TestValueOneOf: a write's value comes from value or value_json, never
// both; a delete has none.
func TestValueOneOf(t *testing.T) {
	for _, tc := range []struct {
		name     string
		del      bool
		bin      []byte
		json     string
		wantErr  string // "" : accepted
		want     string
		wantJSON bool
	}{
		{"binary", false, []byte("v"), "", "", "v", false},
		{"JSON", false, nil, `{"a":1}`, "", `{"a":1}`, true},
		{"JSON with an empty binary value", false, []byte{}, `{"a":1}`, "", `{"a":1}`, true},
		{"both", false, []byte("v"), `{"a":1}`, "not both", "", false},
		{"JSON on a delete", true, nil, `{"a":1}`, "a delete has no value", "", false},
		{"neither", false, nil, "", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := value(proxy.Mutation{Table: "tx", Key: []byte("k"), Delete: tc.del}, tc.bin, tc.json)
			if tc.wantErr != "" {
				if !errors.Is(err, proxy.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want ErrInvalid with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || string(m.Value) != tc.want || m.JSON != tc.wantJSON {
				t.Fatalf("value %q JSON %v err %v, want %q JSON %v", m.Value, m.JSON, err, tc.want, tc.wantJSON)
			}
		})
	}
}
