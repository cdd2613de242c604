package schemaregistry

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

// get answers a GET of the registry at base: status, body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestLatestIgnoresDeleted: "latest" is the newest live version even with
// deleted=true, as Confluent's registry answers (its getLatestVersion
// skips soft-deleted versions whatever the flag): a client asking for the
// latest schema with deleted=true does not get one that was withdrawn.
// With every version soft-deleted, latest is 40402 (the subject still
// exists with deleted=true), and a numbered version is still found.
func TestLatestIgnoresDeleted(t *testing.T) {
	cl, _, base := serve(t)
	ctx := t.Context()
	for _, s := range []string{orderV1, orderV2} {
		if _, err := cl.CreateSchema(ctx, "orders-value", proto(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.DeleteSchema(ctx, "orders-value", 2, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/subjects/orders-value/versions/latest?deleted=true", "/subjects/orders-value/versions/-1?deleted=true"} {
		code, body := get(t, base+p)
		var s SubjectSchema
		if err := json.Unmarshal([]byte(body), &s); code != 200 || err != nil || s.Version != 1 || s.Schema != orderV1 {
			t.Errorf("GET %s: %d %s; want version 1 (version 2 is soft-deleted)", p, code, body)
		}
	}
	if code, body := get(t, base+"/subjects/orders-value/versions/latest/schema?deleted=true"); code != 200 || body != orderV1 {
		t.Errorf("GET latest/schema?deleted=true: %d %q; want version 1's text", code, body)
	}
	if code, body := get(t, base+"/subjects/orders-value/versions/2?deleted=true"); code != 200 || !strings.Contains(body, `"version":2`) {
		t.Errorf("GET 2?deleted=true: %d %s; want the soft-deleted version 2", code, body)
	}
	if err := cl.DeleteSchema(ctx, "orders-value", 1, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, base+"/subjects/orders-value/versions/latest?deleted=true"); code != 404 || !strings.Contains(body, `"error_code":40402`) {
		t.Errorf("GET latest?deleted=true with every version soft-deleted: %d %s; want 404 40402", code, body)
	}
	if code, body := get(t, base+"/subjects/orders-value/versions/latest"); code != 404 || !strings.Contains(body, `"error_code":40401`) {
		t.Errorf("GET latest with every version soft-deleted: %d %s; want 404 40401", code, body)
	}
	if code, body := get(t, base+"/subjects/orders-value/versions/1?deleted=true"); code != 200 || !strings.Contains(body, `"version":1`) {
		t.Errorf("GET 1?deleted=true: %d %s; want the soft-deleted version 1", code, body)
	}
	// Deleting "latest" still deletes the newest live version: none left,
	// and the subject still exists with its deleted versions, so 40402, as
	// Confluent's validateDeleteSchemaVersion answers (its hasSubjects
	// counts deleted versions); an unknown subject is 40401.
	for _, mode := range []sr.DeleteHow{sr.SoftDelete, sr.HardDelete} {
		if err := cl.DeleteSchema(ctx, "orders-value", -1, mode); code(err) != CodeVersionNotFound {
			t.Errorf("delete (permanent %v) of latest with none live: %v, want 40402", mode, err)
		}
	}
	if err := cl.DeleteSchema(ctx, "nope", -1, sr.SoftDelete); code(err) != CodeSubjectNotFound {
		t.Errorf("delete of latest of an unknown subject: %v, want 40401", err)
	}
}

// TestVersionIDs: a version in a path is read as Confluent's VersionId
// reads it: "latest" in any case, spaces around it trimmed, and a number
// that is not a 32-bit integer invalid (42202), not a version not found.
func TestVersionIDs(t *testing.T) {
	cl, _, base := serve(t)
	if _, err := cl.CreateSchema(t.Context(), "orders-value", proto(orderV1)); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"LATEST", "Latest", "%20latest", "1"} {
		if c, body := get(t, base+"/subjects/orders-value/versions/"+v); c != 200 || !strings.Contains(body, `"version":1`) {
			t.Errorf("GET versions/%s: %d %s; want version 1", v, c, body)
		}
	}
	for _, v := range []string{"2147483648", "99999999999", "-9223372036854775809"} {
		if c, body := get(t, base+"/subjects/orders-value/versions/"+v); c != 422 || !strings.Contains(body, `"error_code":42202`) {
			t.Errorf("GET versions/%s: %d %s; want 422 42202", v, c, body)
		}
	}
}

const (
	normBase = `syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
import "google/protobuf/duration.proto";
message Order {
  reserved 8, 9;
  reserved "old", "older";
  string id = 1;
  int64 amount = 2;
  google.protobuf.Timestamp at = 3;
  google.protobuf.Duration ttl = 4;
  oneof pay { string card = 5; string iban = 6; }
  oneof ship { string post = 7; }
  Kind kind = 10;
  enum Kind { A = 0; B = 1; C = 2; }
}
message Line { string sku = 1; }
`
	// normShuffled declares the same in another order: the same schema
	// once normalized (Confluent's Protobuf normalization sorts imports,
	// fields, oneofs, enum values and reserved ranges; not messages).
	normShuffled = `syntax = "proto3";
package shop;
import "google/protobuf/duration.proto";
import "google/protobuf/timestamp.proto";
message Order {
  enum Kind { A = 0; C = 2; B = 1; }
  Kind kind = 10;
  oneof ship { string post = 7; }
  google.protobuf.Duration ttl = 4;
  int64 amount = 2;
  oneof pay { string iban = 6; string card = 5; }
  string id = 1;
  google.protobuf.Timestamp at = 3;
  reserved "older", "old";
  reserved 9, 8;
}
message Line { string sku = 1; }
`
)

// post sends body to the registry at url as a Confluent client does.
func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestNormalize: with normalize=true, registering and looking up compare
// schemas once normalized, as Confluent's registry does: a schema that
// declares the same fields, oneofs, enum values, imports and reserved
// ranges in another order is the one registered (its id and version; no
// new version). Without it, or for a schema whose messages are in
// another order (message indexes differ) or that differs in meaning, it
// is another schema.
func TestNormalize(t *testing.T) {
	_, _, base := serve(t)
	body := func(text string) string {
		b, _ := json.Marshal(SchemaRequest{Schema: text, SchemaType: Protobuf})
		return string(b)
	}
	if code, got := post(t, base+"/subjects/a/versions", body(normBase)); code != 200 || got != "{\"id\":1}\n" {
		t.Fatalf("register: %d %s", code, got)
	}
	if code, got := post(t, base+"/subjects/a", body(normShuffled)); code != 404 || !strings.Contains(got, `"error_code":40403`) {
		t.Errorf("look up the shuffled schema without normalize: %d %s; want 40403", code, got)
	}
	if code, got := post(t, base+"/subjects/a/versions?normalize=true", body(normShuffled)); code != 200 || got != "{\"id\":1}\n" {
		t.Errorf("register the shuffled schema with normalize=true: %d %s; want id 1", code, got)
	}
	if code, got := get(t, base+"/subjects/a/versions"); code != 200 || got != "[1]\n" {
		t.Errorf("versions after registering the same schema normalized: %d %s; want [1]", code, got)
	}
	if code, got := post(t, base+"/subjects/a?normalize=true", body(normShuffled)); code != 200 || !strings.Contains(got, `"version":1,"id":1`) {
		t.Errorf("look up the shuffled schema with normalize=true: %d %s; want version 1, id 1", code, got)
	}
	// Another subject: the normalized schema takes the id it already has.
	if code, got := post(t, base+"/subjects/b/versions?normalize=true", body(normShuffled)); code != 200 || got != "{\"id\":1}\n" {
		t.Errorf("register the shuffled schema under another subject with normalize=true: %d %s; want id 1", code, got)
	}
	swapped := strings.Replace(normBase, "message Line { string sku = 1; }\n", "", 1)
	swapped = strings.Replace(swapped, "message Order {", "message Line { string sku = 1; }\nmessage Order {", 1)
	renamed := strings.Replace(normShuffled, "string id = 1;", "string ident = 1;", 1)
	for name, text := range map[string]string{"messages in another order": swapped, "a field renamed": renamed} {
		if code, got := post(t, base+"/subjects/a?normalize=true", body(text)); code != 404 {
			t.Errorf("look up %s with normalize=true: %d %s; want 404", name, code, got)
		}
	}
}

// TestReferencedByDeleted: GET .../referencedby answers as Confluent's
// getReferencedBy: the version is found soft-deleted too (it is read with
// deleted=true), the ids listed are those a live version uses unless
// ?deleted=true, and offset and limit page the list. wail listed the ids
// of soft-deleted referrers by default and answered 40401 for a
// soft-deleted version, so an operator could not see what still holds the
// version before deleting it for good.
func TestReferencedByDeleted(t *testing.T) {
	st := openPebble(t, t.TempDir())
	defer st.Close()
	r := New(Catalog(st), Limits{})
	ctx := t.Context()
	ref := Reference{Name: "shop/money.proto", Subject: "shop.money", Version: 1}
	for _, s := range []struct{ subject, text string }{{"shop.money", money}, {"orders-value", orderWithMoney}, {"other-value", strings.Replace(orderWithMoney, "Order", "Other", 1)}, {"third-value", strings.Replace(orderWithMoney, "Order", "Third", 1)}} {
		var refs []Reference
		if s.subject != "shop.money" {
			refs = []Reference{ref}
		}
		if _, err := r.Register(ctx, s.subject, SchemaRequest{Schema: s.text, SchemaType: Protobuf, References: refs}); err != nil {
			t.Fatalf("register %s: %v", s.subject, err)
		}
	}
	h := Handler(r, slog.New(slog.DiscardHandler), nil)
	const p = "/subjects/shop.money/versions/1/referencedby"
	check := func(path string, code int, want string) {
		t.Helper()
		if a := call(t, h, "GET", path, ""); a.code != code || a.body != want {
			t.Errorf("GET %s: %d %s; want %d %s", path, a.code, a.body, code, want)
		}
	}
	check(p, 200, "[2,3,4]\n")
	check(p+"?offset=1&limit=1", 200, "[3]\n")
	check(p+"?offset=5", 200, "[]\n")
	check(p+"?limit=0", 200, "[2,3,4]\n") // Confluent: a limit of 0 or less is the default, all
	if _, err := r.DeleteSubject(ctx, "other-value", false); err != nil {
		t.Fatal(err)
	}
	check(p, 200, "[2,4]\n")
	check(p+"?deleted=true", 200, "[2,3,4]\n")
	for _, s := range []string{"orders-value", "third-value"} {
		if _, err := r.DeleteSubject(ctx, s, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.DeleteVersion(ctx, "shop.money", 1, false); err != nil {
		t.Fatal(err)
	}
	check(p, 200, "[]\n")
	check(p+"?deleted=true", 200, "[2,3,4]\n")
	check("/subjects/shop.money/versions/latest/referencedby", 404, `{"error_code":40402,"message":"Version -1 not found."}`+"\n")
	check("/subjects/shop.money/versions/2/referencedby", 404, `{"error_code":40402,"message":"Version 2 not found."}`+"\n")
	check("/subjects/nothing/versions/1/referencedby", 404, `{"error_code":40401,"message":"Subject 'nothing' not found."}`+"\n")
}

// TestListFilters: the lists take Confluent's filters and paging:
// deletedOnly (subjects whose versions are all soft-deleted; versions
// soft-deleted), deletedAsNegative (every version, soft-deleted ones as
// their negative), offset and limit. wail ignored them: a client paging
// with limit got everything, and one asking for deleted subjects only got
// the live ones.
func TestListFilters(t *testing.T) {
	st := openPebble(t, t.TempDir())
	defer st.Close()
	r := New(Catalog(st), Limits{})
	ctx := t.Context()
	if _, err := r.SetCompatibility(ctx, "", "NONE"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ subject, text string }{{"a", orderV1}, {"a", orderV2}, {"a", money}, {"b", orderV1}, {"c", orderV1}, {"d", money}} {
		if _, err := r.Register(ctx, s.subject, SchemaRequest{Schema: s.text, SchemaType: Protobuf}); err != nil {
			t.Fatalf("register %s: %v", s.subject, err)
		}
	}
	if _, err := r.DeleteVersion(ctx, "a", 1, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeleteSubject(ctx, "c", false); err != nil {
		t.Fatal(err)
	}
	h := Handler(r, slog.New(slog.DiscardHandler), nil)
	for _, c := range []struct{ path, want string }{
		{"/subjects", `["a","b","d"]`},
		{"/subjects?deleted=true", `["a","b","c","d"]`},
		{"/subjects?deletedOnly=true", `["c"]`},
		{"/subjects?deleted=true&deletedOnly=true", `["c"]`},
		{"/subjects?offset=1&limit=1", `["b"]`},
		{"/subjects?deleted=true&offset=2", `["c","d"]`},
		{"/subjects?offset=9", `[]`},
		{"/subjects?limit=-1", `["a","b","d"]`},
		{"/subjects/a/versions", `[2,3]`},
		{"/subjects/a/versions?deleted=true", `[1,2,3]`},
		{"/subjects/a/versions?deletedOnly=true", `[1]`},
		{"/subjects/a/versions?deletedAsNegative=true", `[-1,2,3]`},
		{"/subjects/a/versions?deleted=true&offset=1&limit=1", `[2]`},
		{"/subjects/c/versions?deletedOnly=true", `[1]`},
		{"/subjects/c/versions?deletedAsNegative=true", `{"error_code":40401,"message":"Subject 'c' not found."}`},
		{"/schemas/ids/1/subjects?deleted=true", `["a","b","c"]`},
		{"/schemas/ids/1/subjects?deleted=true&offset=1&limit=1", `["b"]`},
		{"/schemas/ids/1/versions?deleted=true&limit=2", `[{"subject":"a","version":1},{"subject":"b","version":1}]`},
		{"/schemas/ids/1/versions?deleted=true&offset=2", `[{"subject":"c","version":1}]`},
	} {
		if a := call(t, h, "GET", c.path, ""); a.body != c.want+"\n" {
			t.Errorf("GET %s: %d %s; want %s", c.path, a.code, a.body, c.want)
		}
	}
}

// TestRegisterAgainAfterSoftDelete: registering again a schema whose
// version was soft-deleted makes a new version with the same id and
// removes the soft-deleted one for good, as Confluent's register
// tombstones a subject's soft-deleted versions of the id it registers
// (unless a schema imports them). wail kept them: ?deleted=true listed
// the schema twice under the subject, where Confluent lists it once.
func TestRegisterAgainAfterSoftDelete(t *testing.T) {
	st := openPebble(t, t.TempDir())
	defer st.Close()
	r := New(Catalog(st), Limits{})
	ctx := t.Context()
	if _, err := r.SetCompatibility(ctx, "", "NONE"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ subject, text string }{{"a", orderV1}, {"a", orderV2}, {"shop.money", money}, {"shop.money", money + "message Rate { double r = 1; }\n"}} {
		if _, err := r.Register(ctx, s.subject, SchemaRequest{Schema: s.text, SchemaType: Protobuf}); err != nil {
			t.Fatalf("register %s: %v", s.subject, err)
		}
	}
	// A soft-deleted version another schema imports stays.
	ref := Reference{Name: "shop/money.proto", Subject: "shop.money", Version: 1}
	if _, err := r.Register(ctx, "b", SchemaRequest{Schema: orderWithMoney, SchemaType: Protobuf, References: []Reference{ref}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeleteSubject(ctx, "b", false); err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		subject string
		version int
	}{{"a", 1}, {"shop.money", 1}} {
		if _, err := r.DeleteVersion(ctx, d.subject, d.version, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []struct{ subject, text string }{{"a", orderV1}, {"shop.money", money}} {
		if _, err := r.Register(ctx, s.subject, SchemaRequest{Schema: s.text, SchemaType: Protobuf}); err != nil {
			t.Fatalf("register %s again: %v", s.subject, err)
		}
	}
	h := Handler(r, slog.New(slog.DiscardHandler), nil)
	for _, c := range []struct{ path, want string }{
		{"/subjects/a/versions?deleted=true", `[2,3]`},
		{"/schemas/ids/1/versions?deleted=true", `[{"subject":"a","version":3}]`},
		{"/subjects/a/versions/3", `{"subject":"a","version":3,"id":1,"schemaType":"PROTOBUF","schema":` + strconv.Quote(orderV1) + `}`},
		{"/subjects/shop.money/versions?deleted=true", `[1,2,3]`},
	} {
		if a := call(t, h, "GET", c.path, ""); a.body != c.want+"\n" {
			t.Errorf("GET %s: %d %s; want %s", c.path, a.code, a.body, c.want)
		}
	}
}

// TestCheckVersionBeforeSchema: a compatibility check against a version
// looks the version up before it reads the schema, as Confluent's
// CompatibilityResource does: a missing or soft-deleted version is 404
// 40402 even when the schema is invalid, also with verbose=true (where an
// invalid schema is otherwise an answer, is_compatible false). Against
// latest, or every version, the schema is read first.
func TestCheckVersionBeforeSchema(t *testing.T) {
	_, _, base := serve(t)
	body := func(text string) string {
		b, _ := json.Marshal(map[string]string{"schema": text, "schemaType": "PROTOBUF"})
		return string(b)
	}
	const bad = `syntax = "proto3"; message M { int32 x = 1 }`
	if code, b := post(t, base+"/subjects/s/versions", body(orderV1)); code != 200 {
		t.Fatalf("register: %d %s", code, b)
	}
	for _, tc := range []struct {
		path     string
		code     int
		contains string
	}{
		{"/compatibility/subjects/s/versions/2", 404, `"error_code":40402`},
		{"/compatibility/subjects/s/versions/2?verbose=true", 404, `"error_code":40402`},
		{"/compatibility/subjects/nope/versions/1?verbose=true", 404, `"error_code":40402`},
		{"/compatibility/subjects/s/versions/1", 422, `"error_code":42201`},
		{"/compatibility/subjects/s/versions/latest", 422, `"error_code":42201`},
		{"/compatibility/subjects/nope/versions/latest", 422, `"error_code":42201`},
		{"/compatibility/subjects/s/versions/1?verbose=true", 200, `"is_compatible":false`},
		{"/compatibility/subjects/s/versions", 422, `"error_code":42201`},
	} {
		if code, b := post(t, base+tc.path, body(bad)); code != tc.code || !strings.Contains(b, tc.contains) {
			t.Errorf("POST %s with an invalid schema: %d %s; want %d %s", tc.path, code, b, tc.code, tc.contains)
		}
	}
}

// put sends body to the registry at url with PUT, as a Confluent client.
func put(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestConfigNormalize: "normalize" in a subject's or the global config
// makes register and lookup normalize without ?normalize=true, as
// Confluent's (getConfigInScope: the subject's setting, else the global
// one). wail dropped the setting silently: {"normalize": true} alone was
// refused as an invalid compatibility level, and with a level it was
// answered without it, so a serializer that looks its schema up
// (auto.register.schemas=false) failed with 40403 for a schema declared
// in another order.
func TestConfigNormalize(t *testing.T) {
	_, _, base := serve(t)
	body := func(text string) string {
		b, _ := json.Marshal(SchemaRequest{Schema: text, SchemaType: Protobuf})
		return string(b)
	}
	for _, tc := range []struct{ method, path, body, want string }{
		{"PUT", "/config/a", `{"normalize": true}`, `"normalize":true`},
		{"GET", "/config/a", "", `"normalize":true`},
		{"PUT", "/config", `{"compatibility": "FULL", "normalize": true}`, `{"compatibility":"FULL","normalize":true}`},
		{"GET", "/config", "", `"normalize":true`},
	} {
		var code int
		var got string
		if tc.method == "PUT" {
			code, got = put(t, base+tc.path, tc.body)
		} else {
			code, got = get(t, base+tc.path)
		}
		if code != 200 || !strings.Contains(got, tc.want) {
			t.Fatalf("%s %s %s: %d %s; want 200 with %s", tc.method, tc.path, tc.body, code, got, tc.want)
		}
	}
	// a: its own setting; b: the global one.
	for _, subject := range []string{"a", "b"} {
		if code, got := post(t, base+"/subjects/"+subject+"/versions", body(normBase)); code != 200 || got != "{\"id\":1}\n" {
			t.Fatalf("register under %s: %d %s", subject, code, got)
		}
		if code, got := post(t, base+"/subjects/"+subject, body(normShuffled)); code != 200 || !strings.Contains(got, `"version":1,"id":1`) {
			t.Errorf("look up the shuffled schema under %s: %d %s; want version 1, id 1", subject, code, got)
		}
		if code, got := post(t, base+"/subjects/"+subject+"/versions", body(normShuffled)); code != 200 || got != "{\"id\":1}\n" {
			t.Errorf("register the shuffled schema under %s: %d %s; want id 1", subject, code, got)
		}
		if code, got := get(t, base+"/subjects/"+subject+"/versions"); code != 200 || got != "[1]\n" {
			t.Errorf("versions of %s: %d %s; want [1]", subject, code, got)
		}
	}
	// A subject's false overrides the global true; deleting the global
	// config forgets it.
	if code, got := put(t, base+"/config/c", `{"normalize": false}`); code != 200 {
		t.Fatalf("PUT /config/c: %d %s", code, got)
	}
	if code, got := post(t, base+"/subjects/c/versions", body(normBase)); code != 200 {
		t.Fatalf("register under c: %d %s", code, got)
	}
	if code, got := post(t, base+"/subjects/c", body(normShuffled)); code != 404 {
		t.Errorf("look up the shuffled schema under c (normalize false): %d %s; want 404", code, got)
	}
	if code, got := del(t, base+"/config"); code != 200 {
		t.Fatalf("DELETE /config: %d %s", code, got)
	}
	if code, got := get(t, base+"/config"); code != 200 || strings.Contains(got, "normalize") {
		t.Errorf("GET /config after DELETE: %d %s; want no normalize", code, got)
	}
	if code, got := post(t, base+"/subjects/b", body(normShuffled)); code != 404 {
		t.Errorf("look up the shuffled schema under b after the global config's delete: %d %s; want 404", code, got)
	}
	if code, got := put(t, base+"/config/a", `{}`); code != 422 || !strings.Contains(got, "42203") {
		t.Errorf("PUT /config/a {}: %d %s; want 422 42203", code, got)
	}
	// GET answers compatibilityLevel; a PUT of what GET answered sets it
	// (Confluent reads only "compatibility" and ignores the other).
	if code, got := put(t, base+"/config/a", `{"compatibilityLevel": "FORWARD"}`); code != 200 {
		t.Errorf("PUT /config/a compatibilityLevel: %d %s", code, got)
	}
	if code, got := get(t, base+"/config/a"); code != 200 || !strings.Contains(got, `"compatibilityLevel":"FORWARD"`) {
		t.Errorf("GET /config/a after a PUT of compatibilityLevel: %d %s; want FORWARD", code, got)
	}
	if code, got := put(t, base+"/config/a", `{"compatibility": "NONE", "compatibilityLevel": "FULL"}`); code != 200 {
		t.Errorf("PUT /config/a both: %d %s", code, got)
	}
	if code, got := get(t, base+"/config/a"); code != 200 || !strings.Contains(got, `"compatibilityLevel":"NONE"`) {
		t.Errorf("GET /config/a after a PUT of both names: %d %s; want compatibility's NONE", code, got)
	}
}

// del sends DELETE to url.
func del(t *testing.T, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
