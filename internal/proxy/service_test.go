package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/intent"
)

func serve(t *testing.T, w *world) string {
	t.Helper()
	path, h := wailv1connect.NewProducerServiceHandler(NewService(newProxy(t, w)))
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
			w := &world{stErr: errNotApplied}
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
			w.mu.Lock()
			defer w.mu.Unlock()
			var aborted []uint64
			for _, in := range w.intents {
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
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, serve(t, &world{stErr: errStoreDown}))
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
	url := serve(t, &world{stErr: errNotApplied})
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
