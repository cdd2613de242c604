package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

type describeOK struct {
	wailv1connect.UnimplementedAdminServiceHandler
}

func (describeOK) DescribeTable(context.Context, *connect.Request[wailv1.DescribeTableRequest]) (*connect.Response[wailv1.DescribeTableResponse], error) {
	return connect.NewResponse(&wailv1.DescribeTableResponse{}), nil
}

func (describeOK) ListTables(context.Context, *connect.Request[wailv1.ListTablesRequest]) (*connect.Response[wailv1.ListTablesResponse], error) {
	return connect.NewResponse(&wailv1.ListTablesResponse{}), nil
}

// TestReadQuotaCoversEveryRead: the read quota bounds every read a
// principal may make, not only Get and Subscribe: DescribeTable and
// ListTables (which ask the log for offsets and the store for the
// catalog) and the schema registry's reads (each loads the catalog), so
// that a principal with any grant cannot take the process by calling them
// in a loop.
func TestReadQuotaCoversEveryRead(t *testing.T) {
	t.Parallel()
	g, tok := newTestGuard(t)
	g.reads = newLimiter("read", "security.quotas.read_rate", 1, 1)
	mux := NewMux()
	Mount(mux, Services{Admin: describeOK{}, Events: wailv1connect.UnimplementedEventServiceHandler{}}, g.Options()...)
	registryCalls := 0
	mux.Handle("/registry/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { registryCalls++ }))
	srv := httptest.NewServer(g.Middleware(mux))
	defer srv.Close()
	admin := wailv1connect.NewAdminServiceClient(srv.Client(), srv.URL)
	auth := func(r connect.AnyRequest) { r.Header().Set("Authorization", "Bearer "+tok) }

	for _, call := range []struct {
		name string
		do   func() error
	}{
		{"DescribeTable", func() error {
			req := connect.NewRequest(&wailv1.DescribeTableRequest{Name: "t"})
			auth(req)
			_, err := admin.DescribeTable(context.Background(), req)
			return err
		}},
		{"ListTables", func() error {
			req := connect.NewRequest(&wailv1.ListTablesRequest{})
			auth(req)
			_, err := admin.ListTables(context.Background(), req)
			return err
		}},
	} {
		g.reads = newLimiter("read", "security.quotas.read_rate", 1, 1) // full: one call
		if err := call.do(); err != nil {
			t.Fatalf("%s, first call: %v", call.name, err)
		}
		err := call.do()
		if connect.CodeOf(err) != connect.CodeResourceExhausted {
			t.Errorf("%s, second call at once: %v, want resource_exhausted", call.name, err)
		}
	}

	g.reads = newLimiter("read", "security.quotas.read_rate", 1, 1)
	get := func() *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/registry/subjects", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp
	}
	if resp := get(); resp.StatusCode != http.StatusOK {
		t.Fatalf("registry read: %d", resp.StatusCode)
	}
	resp := get()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get(retryHeader) == "" {
		t.Errorf("registry read over the quota: %d %v, want 429 with %s", resp.StatusCode, resp.Header, retryHeader)
	}
	// Confluent clients parse the registry's refusals as its error body.
	var e struct {
		Code    int    `json:"error_code"`
		Message string `json:"message"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Code != http.StatusTooManyRequests || e.Message == "" ||
		resp.Header.Get("Content-Type") != "application/vnd.schemaregistry.v1+json" {
		t.Errorf("registry read over the quota: body %+v (%v), content type %q; want the registry's error body", e, err, resp.Header.Get("Content-Type"))
	}
	if registryCalls != 1 {
		t.Errorf("the registry handler ran %d times, want 1 (a refused read does no work)", registryCalls)
	}
}
