package schemaregistry

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// lostAnswer is a Storage whose next Swap saves and then fails, as a
// store does when the connection drops after the commit: the caller does
// not know whether its change happened.
type lostAnswer struct {
	Storage
	armed atomic.Bool
	fired atomic.Int32
}

var errConnLost = errors.New("connection lost after commit")

func (s *lostAnswer) Swap(ctx context.Context, old, new []byte) (bool, error) {
	ok, err := s.Storage.Swap(ctx, old, new)
	if err == nil && ok && s.armed.CompareAndSwap(true, false) {
		s.fired.Add(1)
		return false, errConnLost
	}
	return ok, err
}

// TestRetryAfterUnknownOutcome: a registration whose save succeeded but
// whose answer was lost fails with 50001; the client's retry gets the
// same id and version, and no version is registered twice.
func TestRetryAfterUnknownOutcome(t *testing.T) {
	ctx := t.Context()
	st := openPebble(t, t.TempDir())
	defer st.Close()
	s := &lostAnswer{Storage: Catalog(st)}
	r := New(s, Limits{})
	if _, err := r.Register(ctx, "orders-value", SchemaRequest{Schema: orderV1, SchemaType: Protobuf}); err != nil {
		t.Fatal(err)
	}
	s.armed.Store(true)
	_, err := r.Register(ctx, "orders-value", SchemaRequest{Schema: orderV2, SchemaType: Protobuf})
	if !errors.Is(err, errConnLost) || s.fired.Load() != 1 {
		t.Fatalf("register with a lost answer: %v (fired %d)", err, s.fired.Load())
	}
	rec := call(t, Handler(r, slog.New(slog.DiscardHandler), nil), "GET", "/subjects/orders-value/versions", "")
	if rec.code != 200 || rec.body != "[1,2]\n" {
		t.Fatalf("the lost registration was not saved: %d %s", rec.code, rec.body)
	}
	id, err := r.Register(ctx, "orders-value", SchemaRequest{Schema: orderV2, SchemaType: Protobuf})
	if err != nil || id != 2 {
		t.Fatalf("retry: id %d, %v", id, err)
	}
	if vs, _ := r.Versions(ctx, "orders-value", true); !slices.Equal(vs, []int{1, 2}) {
		t.Fatalf("versions after the retry: %v", vs)
	}
	// Over HTTP the lost answer is a store error the client may retry.
	s.armed.Store(true)
	b, _ := json.Marshal(SchemaRequest{Schema: orderBad, SchemaType: Protobuf})
	h := Handler(New(s, Limits{}), slog.New(slog.DiscardHandler), nil)
	call(t, h, "PUT", "/config/orders-value", `{"compatibility": "NONE"}`) // fires the fault
	if rec := call(t, h, "GET", "/config/orders-value", ""); rec.body != `{"compatibilityLevel":"NONE"}`+"\n" {
		t.Fatalf("level after a lost answer: %s", rec.body)
	}
	rec = call(t, h, "POST", "/subjects/orders-value/versions", string(b))
	if rec.code != http.StatusOK {
		t.Fatalf("register: %d %s", rec.code, rec.body)
	}
	s.armed.Store(true)
	rec = call(t, h, "DELETE", "/subjects/orders-value/versions/3", "")
	var e Error
	_ = json.Unmarshal([]byte(rec.body), &e)
	if rec.code != 500 || e.Code != CodeStore || !strings.Contains(e.Message, "connection lost") {
		t.Fatalf("lost answer over HTTP: %d %s", rec.code, rec.body)
	}
	rec = call(t, h, "DELETE", "/subjects/orders-value/versions/3", "")
	_ = json.Unmarshal([]byte(rec.body), &e)
	if e.Code != CodeVersionSoftDeleted {
		t.Fatalf("retried delete: %d %s (the first one was saved: 40406 expected)", rec.code, rec.body)
	}
}

// FuzzHandler: any request (method, path, body) gets an answer: JSON with
// an error_code when it is refused, never a panic, never a 5xx (the store
// is healthy), and the registry still serves afterwards.
func FuzzHandler(f *testing.F) {
	reg, _ := json.Marshal(SchemaRequest{Schema: orderV1, SchemaType: Protobuf})
	for _, seed := range []struct{ method, path, body string }{
		{"POST", "/subjects/a/versions", string(reg)},
		{"POST", "/subjects/a", string(reg)},
		{"POST", "/compatibility/subjects/a/versions/latest?verbose=true", string(reg)},
		{"GET", "/subjects/a/versions/latest", ""},
		{"DELETE", "/subjects/a?permanent=true", ""},
		{"PUT", "/config/a", `{"compatibility":"FULL"}`},
		{"PUT", "/mode", `{"mode":"IMPORT"}`},
		{"POST", "/subjects/a/versions", `{"schemaType":"PROTOBUF","schema":"syntax = \"proto3\"; import \"x.proto\";","references":[{"name":"x.proto","subject":"a","version":-1}]}`},
		{"GET", "/schemas/ids/1/versions?deleted=true", ""},
	} {
		f.Add(seed.method, seed.path, seed.body)
	}
	st := openPebble(f, f.TempDir())
	f.Cleanup(func() { st.Close() })
	h := Handler(New(Catalog(st), Limits{MaxSchemaBytes: 4 << 10}), slog.New(slog.DiscardHandler), nil)
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t\r\n#") || !validMethod(method) {
			return // not a request an HTTP server would hand over
		}
		req, err := http.NewRequest(method, "http://registry"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		rec := httptestRecorder(h, req)
		if rec.code >= 500 {
			t.Fatalf("%s %s: %d %s", method, path, rec.code, rec.body)
		}
		if rec.code >= 400 {
			var e Error
			if err := json.Unmarshal([]byte(rec.body), &e); err != nil || e.Code == 0 || e.Message == "" {
				t.Fatalf("%s %s: %d with a body that is not an error: %q", method, path, rec.code, rec.body)
			}
		}
		if a := call(t, h, "GET", "/schemas/types", ""); a.code != 200 {
			t.Fatalf("the registry stopped serving after %s %s: %d", method, path, a.code)
		}
	})
}

func validMethod(m string) bool {
	return slices.Contains([]string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"}, m)
}
