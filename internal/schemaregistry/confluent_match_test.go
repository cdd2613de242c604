package schemaregistry

import (
	"encoding/json"
	"io"
	"net/http"
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
	// Deleting "latest" still deletes the newest live version: none left.
	if err := cl.DeleteSchema(ctx, "orders-value", -1, sr.SoftDelete); code(err) != CodeSubjectNotFound {
		t.Errorf("soft delete of latest with none live: %v, want 40401", err)
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
