package schemaregistry

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBodyMediaType: a POST or PUT whose body is of a type a browser
// sends to another site without asking (text/plain, a form, or none: a
// no-cors fetch of a Blob or ArrayBuffer sends no Content-Type) is refused
// 415 and changes nothing; the registry's own types, application/json and
// octet-stream (a browser cannot send it cross-site without asking) are
// taken, as Confluent's registry takes them.
func TestBodyMediaType(t *testing.T) {
	st := openPebble(t, t.TempDir())
	defer st.Close()
	r := New(Catalog(st), Limits{})
	h := Handler(r, slog.New(slog.DiscardHandler), nil)
	reg := `{"schemaType":"PROTOBUF","schema":"syntax = \"proto3\"; message X { string a = 1; }"}`
	for _, tc := range []struct {
		method, path, ctype, body string
		want                      int
	}{
		{"POST", "/subjects/a/versions", "text/plain", reg, 415},
		{"POST", "/subjects/a/versions", "application/x-www-form-urlencoded", reg, 415},
		{"POST", "/subjects/a/versions", "multipart/form-data; boundary=x", reg, 415},
		{"PUT", "/config", "text/plain;charset=UTF-8", `{"compatibility":"NONE"}`, 415},
		{"PUT", "/mode", "text/plain", `{"mode":"READONLY"}`, 415},
		{"POST", "/subjects/b/versions", "application/vnd.schemaregistry.v1+json", reg, 200},
		{"POST", "/subjects/c/versions", "application/vnd.schemaregistry+json", reg, 200},
		{"POST", "/subjects/d/versions", "Application/JSON; charset=utf-8", reg, 200},
		{"POST", "/subjects/e/versions", "application/octet-stream", reg, 200},
		{"POST", "/subjects/f/versions", "", reg, 415},
		{"PUT", "/mode", "", `{"mode":"READONLY"}`, 415},
		{"POST", "/subjects/b", "", reg, 415},
	} {
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s %s as %q: %d %s, want %d", tc.method, tc.path, tc.ctype, rec.Code, rec.Body, tc.want)
		}
		if tc.want == 415 && !strings.Contains(rec.Body.String(), `"error_code":415`) {
			t.Errorf("%s %s as %q: body %s, want error_code 415", tc.method, tc.path, tc.ctype, rec.Body)
		}
	}
	subjects, err := r.Subjects(context.Background(), "", false)
	if err != nil || strings.Join(subjects, ",") != "b,c,d,e" {
		t.Errorf("subjects %v, %v; want b, c, d, e (nothing of the refused ones)", subjects, err)
	}
	if m, err := r.Mode(context.Background(), "", false); err != nil || m != ReadWrite {
		t.Errorf("mode %q, %v: the refused PUT changed it", m, err)
	}
}

// TestReadonlyOverrideFreezesAll: a global READONLY_OVERRIDE freezes
// every subject, also one with a mode of its own (as Confluent's
// getMode): registering and deleting are refused, and the subject's mode
// reads READONLY_OVERRIDE. (The subject's own mode came first.)
func TestReadonlyOverrideFreezesAll(t *testing.T) {
	ctx := context.Background()
	st := openPebble(t, t.TempDir())
	defer st.Close()
	r := New(Catalog(st), Limits{})
	if _, err := r.Register(ctx, "s", SchemaRequest{Schema: orderV1, SchemaType: Protobuf}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SetMode(ctx, "s", ReadWrite, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SetMode(ctx, "", ReadOnlyOverride, false); err != nil {
		t.Fatal(err)
	}
	if m, err := r.Mode(ctx, "s", true); err != nil || m != ReadOnlyOverride {
		t.Errorf("mode of s under a global READONLY_OVERRIDE: %q, %v", m, err)
	}
	if _, err := r.Register(ctx, "s", SchemaRequest{Schema: orderV1 + "\n// v2", SchemaType: Protobuf}); errCode(err) != CodeNotPermitted {
		t.Errorf("register under a READWRITE subject while the registry is READONLY_OVERRIDE: %v, want 42205", err)
	}
	if _, err := r.DeleteSubject(ctx, "s", false); errCode(err) != CodeNotPermitted {
		t.Errorf("delete under a READWRITE subject while the registry is READONLY_OVERRIDE: %v, want 42205", err)
	}
}

// TestAnswersNotSniffed: every answer says X-Content-Type-Options:
// nosniff, not only errors: a schema's text (GET .../schema, text/plain)
// holds whatever its registrant wrote in its comments, markup included,
// which a browser that sniffs types could run as a page of wail's origin.
func TestAnswersNotSniffed(t *testing.T) {
	st := openPebble(t, t.TempDir())
	defer st.Close()
	h := Handler(New(Catalog(st), Limits{}), slog.New(slog.DiscardHandler), nil)
	reg := `{"schemaType":"PROTOBUF","schema":"syntax = \"proto3\";\n// <html><script>alert(document.domain)</script>\nmessage X { string a = 1; }"}`
	req := httptest.NewRequest("POST", "/subjects/a/versions", strings.NewReader(reg))
	req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("register: %d %s", rec.Code, rec.Body)
	}
	for _, path := range []string{"/schemas/ids/1/schema", "/subjects/a/versions/1/schema", "/schemas/ids/1", "/subjects", "/subjects/a/versions/1", "/config", "/"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: %d, Content-Type %q, X-Content-Type-Options %q; want 200 and nosniff", path, rec.Code,
				rec.Header().Get("Content-Type"), rec.Header().Get("X-Content-Type-Options"))
		}
	}
}
