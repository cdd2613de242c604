package schemaregistry

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

// TestSchemasList: GET /schemas lists subjects' versions as Confluent's
// registry does (what `confluent schema-registry schema list` calls):
// by subject, then version; subjectPrefix, deleted (soft-deleted
// versions too), latestOnly (each subject's newest version the filter
// keeps), offset and limit.
func TestSchemasList(t *testing.T) {
	cl, _, base := serve(t)
	ctx := t.Context()
	for _, r := range []struct{ subject, text string }{
		{"orders-value", orderV1}, {"orders-value", orderV2}, {"audit-value", orderV1}, {"payments-value", orderV2},
	} {
		if _, err := cl.CreateSchema(ctx, r.subject, proto(r.text)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.DeleteSchema(ctx, "orders-value", 2, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		query string
		want  []string // subject/version
	}{
		{"", []string{"audit-value/1", "orders-value/1", "payments-value/1"}},
		{"?deleted=true", []string{"audit-value/1", "orders-value/1", "orders-value/2", "payments-value/1"}},
		{"?latestOnly=true", []string{"audit-value/1", "orders-value/1", "payments-value/1"}},
		{"?latestOnly=true&deleted=true", []string{"audit-value/1", "orders-value/2", "payments-value/1"}},
		{"?subjectPrefix=orders", []string{"orders-value/1"}},
		{"?subjectPrefix=orders&deleted=true", []string{"orders-value/1", "orders-value/2"}},
		{"?subjectPrefix=nope", []string{}},
		{"?offset=1&limit=1", []string{"orders-value/1"}},
		{"?offset=9", []string{}},
	} {
		code, body := get(t, base+"/schemas"+tc.query)
		var got []SubjectSchema
		if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil {
			t.Errorf("GET /schemas%s: %d %s (%v)", tc.query, code, body, err)
			continue
		}
		names := []string{}
		for _, s := range got {
			names = append(names, fmt.Sprintf("%s/%d", s.Subject, s.Version))
			if s.ID == 0 || s.SchemaType != Protobuf || s.Schema == "" {
				t.Errorf("GET /schemas%s: %+v; want its id, type and text", tc.query, s)
			}
		}
		if fmt.Sprint(names) != fmt.Sprint(tc.want) {
			t.Errorf("GET /schemas%s: %v, want %v", tc.query, names, tc.want)
		}
	}
}

// TestSchemasListLimit: GET /schemas answers at most schemasLimit
// schemas, as Confluent's registry (schema.search.max.limit, 1000): a
// limit above it, or none, gives that many.
func TestSchemasListLimit(t *testing.T) {
	list := make([]int, schemasLimit+5)
	for _, q := range []string{"", "?limit=0", "?limit=-1", fmt.Sprintf("?limit=%d", schemasLimit+1)} {
		if got := len(pageOf(httptest.NewRequest("GET", "/schemas"+q, nil), list, schemasLimit)); got != schemasLimit {
			t.Errorf("GET /schemas%s of %d: %d answered, want %d", q, len(list), got, schemasLimit)
		}
	}
	if got := len(pageOf(httptest.NewRequest("GET", "/schemas?limit=7", nil), list, schemasLimit)); got != 7 {
		t.Errorf("limit=7: %d answered", got)
	}
}
