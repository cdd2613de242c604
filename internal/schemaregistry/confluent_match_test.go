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
