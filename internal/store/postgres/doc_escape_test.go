package postgres

import (
	"context"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

// TestDocEscapedBackslash: only the escape \u0000 (a NUL character) is
// something jsonb cannot store. A string holding the six characters
// backslash, 'u', '0', '0', '0', '0' is written in JSON as "\\u0000":
// jsonb stores it, and the doc column holds it.
func TestDocEscapedBackslash(t *testing.T) {
	t.Parallel()
	s := openFresh(t, false)
	ctx := context.Background()
	if err := s.CreateTable(ctx, "docs"); err != nil {
		t.Fatal(err)
	}
	doc := `{"path":"C:\\u0000dir"}` // the JSON string's value is C:\u0000dir, no NUL in it
	var direct string
	if err := s.primary.QueryRow(ctx, `SELECT ($1::text::jsonb)->>'path'`, doc).Scan(&direct); err != nil {
		t.Fatalf("jsonb refuses the doc itself: %v", err)
	}
	if _, err := s.Apply(ctx, "docs", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1, SchemaID: 1, Doc: []byte(doc)}}); err != nil {
		t.Fatal(err)
	}
	var got *string
	if err := s.primary.QueryRow(ctx, `SELECT doc->>'path' FROM `+tableIdent("docs")+` WHERE key = $1`, []byte("k")).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got == nil || *got != direct {
		t.Fatalf("doc column path = %v, want %q (jsonb stores this doc: it has no NUL)", got, direct)
	}
}

// TestHasNULEscape: the escape \u0000 in a JSON text, not the same six
// characters after an escaped backslash.
func TestHasNULEscape(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want bool
	}{
		{`{"a":"x\u0000y"}`, true},
		{`{"a":"x\\u0000y"}`, false},
		{`{"a":"x\\\u0000y"}`, true},
		{`{"a":"\u00001"}`, true},
		{`{"a":"\u0001"}`, false},
		{`{"a":"\"u0000"}`, false},
		{`\`, false},
		{``, false},
	} {
		if got := hasNULEscape(tc.doc); got != tc.want {
			t.Errorf("hasNULEscape(%s) = %v, want %v", tc.doc, got, tc.want)
		}
	}
}
