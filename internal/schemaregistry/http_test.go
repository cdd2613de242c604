package schemaregistry

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type answer struct {
	code   int
	body   string
	header http.Header
}

func call(t *testing.T, h http.Handler, method, path, body string) answer {
	t.Helper()
	return httptestRecorder(h, httptest.NewRequest(method, path, strings.NewReader(body)))
}

func httptestRecorder(h http.Handler, req *http.Request) answer {
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return answer{rec.Code, string(b), rec.Result().Header}
}

// TestErrorBodies: each refusal has the Confluent status, error_code and a
// message that says what to do.
func TestErrorBodies(t *testing.T) {
	st := openPebble(t, t.TempDir())
	defer st.Close()
	r := New(Catalog(st), Limits{MaxSchemaBytes: 200, MaxDocumentBytes: 2000})
	h := Handler(r, slog.New(slog.DiscardHandler), nil)
	reg := func(schema string) string {
		b, _ := json.Marshal(SchemaRequest{Schema: schema, SchemaType: Protobuf})
		return string(b)
	}
	if a := call(t, h, "POST", "/subjects/a/versions", reg(`syntax = "proto3"; message A { int32 x = 1; }`)); a.code != 200 || a.body != "{\"id\":1}\n" {
		t.Fatalf("register: %d %s", a.code, a.body)
	}
	for _, tc := range []struct {
		name, method, path, body string
		status, code             int
		msg                      string
	}{
		{"subject not found", "GET", "/subjects/nope/versions", "", 404, 40401, "Subject 'nope' not found."},
		{"version not found", "GET", "/subjects/a/versions/9", "", 404, 40402, "Version 9 not found."},
		{"invalid version", "GET", "/subjects/a/versions/first", "", 422, 42202, "'first' is not a valid version id"},
		{"schema not found", "GET", "/schemas/ids/7", "", 404, 40403, "Schema 7 not found"},
		{"bad id", "GET", "/schemas/ids/x", "", 404, 40403, "Schema x not found"},
		{"unknown path", "GET", "/nothing/here", "", 404, 404, "GET /nothing/here is not part of the schema registry API"},
		{"wrong method", "PATCH", "/subjects", "", 405, 405, "PATCH /subjects takes GET"},
		{"wrong method of a route", "PUT", "/subjects/x/versions", "", 405, 405, "takes GET, POST"},
		{"wrong method of config", "POST", "/config", "", 405, 405, "takes GET, PUT, DELETE"},
		{"a compatibility test by GET", "GET", "/compatibility/subjects/x/versions", "", 405, 405, "takes POST"},
		{"avro", "POST", "/subjects/a/versions", `{"schema": "{\"type\": \"string\"}"}`, 422, 42201, "set \"schemaType\": \"PROTOBUF\""},
		{"json schema", "POST", "/subjects/a/versions", `{"schema": "{}", "schemaType": "JSON"}`, 422, 42201, "this one is JSON"},
		// Confluent's web layer (rest-utils' JsonParseExceptionMapper and
		// JsonMappingExceptionMapper) answers 400 with error_code 400 for a
		// body that is not JSON or not of the request's shape.
		{"not json", "POST", "/subjects/a/versions", `schema please`, 400, 400, "not a schema request in JSON"},
		{"json of another shape", "POST", "/subjects/a/versions", `{"schema": 7}`, 400, 400, "not a schema request in JSON"},
		{"empty body", "POST", "/subjects/a/versions", ``, 400, 400, "not a schema request in JSON"},
		{"config not json", "PUT", "/config", `{"compatibility": `, 400, 400, "not a compatibility level's body in JSON"},
		{"mode not json", "PUT", "/mode/a", `mode`, 400, 400, "not a mode's body in JSON"},
		{"no level", "PUT", "/config", `{}`, 422, 42203, "Invalid compatibility level"},
		{"empty", "POST", "/subjects/a/versions", reg("  "), 422, 42201, "the schema is empty"},
		{"syntax error", "POST", "/subjects/a/versions", reg("syntax = \"proto3\";\nmessage {"), 422, 42201, "Invalid schema: schema.proto:2:9"},
		{"schema too large", "POST", "/subjects/a/versions", reg(`syntax = "proto3"; message A { int32 x = 1; }` + strings.Repeat("\n", 300)), 422, 42209, "over schema_registry.max_schema_bytes (200)"},
		{"request too large", "POST", "/subjects/a/versions", reg(strings.Repeat("x", 70<<10)), 413, 42209, "schema_registry.max_schema_bytes is 200"},
		{"invalid subject", "POST", "/subjects/a%01b/versions", reg(`syntax = "proto3";`), 422, 42208, "Invalid subject"},
		{"reserved subject", "POST", "/subjects/__GLOBAL/versions", reg(`syntax = "proto3";`), 422, 42208, "not starting with '__'"},
		{"incompatible", "POST", "/subjects/a/versions", reg(`syntax = "proto3"; message B {}`), 409, 409, "MESSAGE_REMOVED"},
		// Confluent's compatibility test reads the version alone: a version
		// it lacks is 40402 even when the subject has none (or only deleted ones).
		{"compatibility against a version of a missing subject", "POST", "/compatibility/subjects/nope/versions/1", reg(`syntax = "proto3";`), 404, 40402, "Version 1 not found."},
		{"invalid level", "PUT", "/config", `{"compatibility": "SIDEWAYS"}`, 422, 42203, "Invalid compatibility level"},
		{"invalid mode", "PUT", "/mode/a", `{"mode": "SIDEWAYS"}`, 422, 42204, "Invalid mode"},
		{"no subject level", "GET", "/config/a", "", 404, 40408, "does not have subject-level compatibility configured"},
		{"no subject mode", "GET", "/mode/a", "", 404, 40409, "does not have subject-level mode configured"},
		// Deleting a subject's level or mode it does not have: Confluent's
		// deleteSubjectConfig and deleteSubjectMode answer 40401.
		{"delete no subject level", "DELETE", "/config/a", "", 404, 40401, "Subject 'a' not found."},
		{"delete no subject mode", "DELETE", "/mode/a", "", 404, 40401, "Subject 'a' not found."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := call(t, h, tc.method, tc.path, tc.body)
			c, body, hdr := a.code, a.body, a.header
			var e Error
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if c != tc.status || e.Code != tc.code || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("got %d %+v, want %d %d %q", c, e, tc.status, tc.code, tc.msg)
			}
			if ct := hdr.Get("Content-Type"); ct != contentType {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}

	// The whole document has a bound too.
	var code int
	var e Error
	for i := range 40 {
		a := call(t, h, "POST", "/subjects/fill"+string(rune('a'+i%26))+string(rune('a'+i/26))+"/versions",
			reg(`syntax = "proto3"; message Fill { int32 x = 1; }`+strings.Repeat(" ", i)))
		if code = a.code; code != 200 {
			_ = json.Unmarshal([]byte(a.body), &e)
			break
		}
	}
	if code != 422 || e.Code != CodeSchemaTooLarge || !strings.Contains(e.Message, "schema_registry.max_document_bytes (2000)") {
		t.Fatalf("document limit: %d %+v", code, e)
	}
}

// TestStoreFailure: a store that fails gives 50001 and the cause, and the
// handler goes on.
func TestStoreFailure(t *testing.T) {
	st := openPebble(t, t.TempDir())
	h := Handler(New(Catalog(st), Limits{}), slog.New(slog.DiscardHandler), nil)
	st.Close()
	a := call(t, h, "GET", "/subjects", "")
	var e Error
	_ = json.Unmarshal([]byte(a.body), &e)
	if a.code != 500 || e.Code != CodeStore || !strings.Contains(e.Message, "closed") {
		t.Fatalf("closed store: %d %s", a.code, a.body)
	}
}

// TestRawShapes: the JSON of the answers clients parse, field by field.
func TestRawShapes(t *testing.T) {
	st := openPebble(t, t.TempDir())
	defer st.Close()
	h := Handler(New(Catalog(st), Limits{}), slog.New(slog.DiscardHandler), nil)
	b, _ := json.Marshal(SchemaRequest{Schema: orderV1, SchemaType: Protobuf})
	call(t, h, "POST", "/subjects/orders-value/versions", string(b))
	for _, tc := range []struct{ path, want string }{
		{"/", "{}\n"},
		{"/schemas/types", `["PROTOBUF"]` + "\n"},
		{"/subjects", `["orders-value"]` + "\n"},
		{"/subjects/orders-value/versions", "[1]\n"},
		{"/schemas/ids/1/versions", `[{"subject":"orders-value","version":1}]` + "\n"},
		{"/subjects/orders-value/versions/latest/referencedby", "[]\n"},
		{"/config", `{"compatibilityLevel":"BACKWARD"}` + "\n"},
		{"/mode", `{"mode":"READWRITE"}` + "\n"},
		{"/schemas/ids/1/schema", orderV1},
		{"/subjects/orders-value/versions/1/schema", orderV1},
	} {
		if a := call(t, h, "GET", tc.path, ""); a.code != 200 || a.body != tc.want {
			t.Errorf("GET %s: %d %q, want %q", tc.path, a.code, a.body, tc.want)
		}
	}
	// The compatibility test's answer has messages exactly when verbose,
	// as Confluent's (CompatibilityCheckResponse, NON_NULL): an empty list
	// when compatible, not an absent key a client indexes into.
	for _, tc := range []struct{ query, want string }{
		{"", `{"is_compatible":true}` + "\n"},
		{"?verbose=false", `{"is_compatible":true}` + "\n"},
		{"?verbose=true", `{"is_compatible":true,"messages":[]}` + "\n"},
	} {
		for _, path := range []string{"/compatibility/subjects/orders-value/versions/latest", "/compatibility/subjects/orders-value/versions"} {
			if a := call(t, h, "POST", path+tc.query, string(b)); a.code != 200 || a.body != tc.want {
				t.Errorf("POST %s%s: %d %q, want %q", path, tc.query, a.code, a.body, tc.want)
			}
		}
	}
	body := call(t, h, "GET", "/subjects/orders-value/versions/1", "").body
	var got map[string]any
	_ = json.Unmarshal([]byte(body), &got)
	if got["subject"] != "orders-value" || got["version"] != 1.0 || got["id"] != 1.0 || got["schemaType"] != "PROTOBUF" || got["schema"] != orderV1 {
		t.Errorf("version: %s", body)
	}
}

// TestMetrics: requests are counted by route and error code, and a second
// handler on the same registry of metrics counts into the same series.
func TestMetrics(t *testing.T) {
	st := openPebble(t, t.TempDir())
	defer st.Close()
	reg := prometheus.NewRegistry()
	r := New(Catalog(st), Limits{})
	h := Handler(r, slog.New(slog.DiscardHandler), reg)
	h2 := Handler(r, slog.New(slog.DiscardHandler), reg)
	call(t, h, "GET", "/subjects", "")
	call(t, h2, "GET", "/subjects", "")
	call(t, h, "GET", "/subjects/nope/versions", "")
	call(t, h, "GET", "/nothing", "")
	want := `
# HELP wail_schema_registry_requests_total Schema registry requests by route and Confluent error code (0: answered).
# TYPE wail_schema_registry_requests_total counter
wail_schema_registry_requests_total{code="0",route="GET /subjects"} 2
wail_schema_registry_requests_total{code="404",route="unknown"} 1
wail_schema_registry_requests_total{code="40401",route="GET /subjects/{subject}/versions"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "wail_schema_registry_requests_total"); err != nil {
		t.Fatal(err)
	}
}
