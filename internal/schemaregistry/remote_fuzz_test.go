package schemaregistry

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// FuzzRemoteAnswers: a remote registry's answers come from the network:
// whatever it answers (a schema by id, the versions a reference names),
// reading them does not panic, and a schema it takes compiles.
func FuzzRemoteAnswers(f *testing.F) {
	var byID, byVersion atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		switch {
		case strings.HasPrefix(r.URL.Path, "/schemas/ids/"):
			_, _ = w.Write(byID.Load().([]byte))
		case strings.HasPrefix(r.URL.Path, "/subjects/"):
			_, _ = w.Write(byVersion.Load().([]byte))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	money := "syntax = \"proto3\";\npackage shop;\nmessage Money { int64 units = 1; }\n"
	withRef := "syntax = \"proto3\";\npackage shop;\nimport \"money.proto\";\nmessage Order { Money total = 1; }\n"
	enc := func(v any) []byte { b, _ := json.Marshal(v); return b }
	f.Add(enc(map[string]any{"schema": orderV1, "schemaType": "PROTOBUF"}), []byte(`{}`))
	f.Add(enc(map[string]any{"schema": withRef, "schemaType": "PROTOBUF",
		"references": []map[string]any{{"name": "money.proto", "subject": "money", "version": 1}}}),
		enc(map[string]any{"subject": "money", "version": 1, "id": 2, "schema": money, "schemaType": "PROTOBUF"}))
	f.Add(enc(map[string]any{"schema": withRef, "schemaType": "PROTOBUF",
		"references": []map[string]any{{"name": "money.proto", "subject": "money", "version": 1}}}),
		enc(map[string]any{"subject": "money", "version": 1, "id": 2, "schema": withRef, "schemaType": "PROTOBUF",
			"references": []map[string]any{{"name": "money.proto", "subject": "money", "version": 1}}}))
	f.Add([]byte(`{"schema":null,"references":[null]}`), []byte(`null`))
	// One client for every input, as a process has: a client per input
	// left a connection per input open.
	r, err := NewRemote(RemoteOptions{URL: srv.URL, Timeout: 5 * time.Second, Limits: Limits{MaxSchemaBytes: 4 << 10, MaxReferences: 8}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, idBody, versionBody []byte) {
		byID.Store(idBody)
		byVersion.Store(versionBody)
		s, err := r.ByID(context.Background(), 1)
		if err == nil && s == nil {
			t.Fatal("no schema and no error")
		}
		_, _, _ = r.Latest(context.Background(), "a")
		_, _ = r.LiveIDs(context.Background(), "a")
		_, _ = r.Versions(context.Background(), "a", true)
	})
}
