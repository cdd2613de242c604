package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/store"
)

// upperValidator stands for the server's typed values: JSON values are
// "converted" (upper-cased), values starting with '!' refused, "long"
// converts to one byte more than the value limit (16 bytes in newProxy),
// "limit" to exactly the limit.
type upperValidator struct{ calls int }

// typedSchema is the schema id upperValidator gives a converted value; it
// keeps the JSON as the value's document.
const typedSchema = 7

func (v *upperValidator) Validate(_ context.Context, _ catalog.Table, m *Mutation) error {
	v.calls++
	switch {
	case strings.HasPrefix(string(m.Value), "!"):
		return fmt.Errorf("%w: value: field x is not a number", ErrInvalid)
	case string(m.Value) == "long":
		m.Value = []byte(strings.Repeat("x", 17))
	case string(m.Value) == "limit":
		m.Value = []byte(strings.Repeat("x", 16))
	case m.JSON:
		m.Doc = m.Value
		m.Value, m.JSON, m.SchemaID = []byte(strings.ToUpper(string(m.Value))), false, typedSchema
	}
	return nil
}

// TestValidator: the validator sees every mutation that passed the size
// checks before it is stamped; its refusal stops the mutation alone (no
// version, no intent, no row); a converted value is stored and checked
// against the value limit again; without a validator, JSON is refused.
func TestValidator(t *testing.T) {
	for _, tc := range []struct {
		name      string
		validator bool
		mut       Mutation
		wantErr   string // "" : stored
		wantValue string
	}{
		{"binary passes", true, Mutation{Table: "tx", Key: []byte("k"), Value: []byte("v")}, "", "v"},
		{"JSON converted", true, Mutation{Table: "tx", Key: []byte("k"), Value: []byte("{a}"), JSON: true}, "", "{A}"},
		{"refused", true, Mutation{Table: "tx", Key: []byte("k"), Value: []byte("!v")}, "field x", ""},
		{"converted too large", true, Mutation{Table: "tx", Key: []byte("k"), Value: []byte("long")}, "17 bytes in Protobuf binary", ""},
		{"converted to exactly the limit", true, Mutation{Table: "tx", Key: []byte("k"), Value: []byte("limit")}, "", strings.Repeat("x", 16)},
		{"JSON without validator", false, Mutation{Table: "tx", Key: []byte("k"), Value: []byte("{}"), JSON: true}, "needs a typed table", ""},
		{"binary without validator", false, Mutation{Table: "tx", Key: []byte("k"), Value: []byte("v")}, "", "v"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &world{}
			p := newProxy(t, w)
			v := &upperValidator{}
			if tc.validator {
				p.SetValidator(v)
			}
			res := p.Write(context.Background(), []Mutation{tc.mut, {Table: "tx", Key: []byte("ok"), Value: []byte("fine")}})
			if res[1].Err != nil || !res[1].Stored {
				t.Fatalf("the other mutation of the batch: %+v", res[1])
			}
			r := res[0]
			if tc.wantErr != "" {
				if !errors.Is(r.Err, ErrInvalid) || !strings.Contains(r.Err.Error(), tc.wantErr) || r.Version != 0 {
					t.Fatalf("got %+v, want ErrInvalid with %q and no version", r, tc.wantErr)
				}
				if _, ok := w.Rows["k"]; ok || len(w.Intents) != 1 {
					t.Fatalf("a refused mutation left a row or an intent: %v, %v", w.Rows, w.Intents)
				}
				return
			}
			if r.Err != nil || !r.Stored || string(w.Rows["k"].Value) != tc.wantValue {
				t.Fatalf("got %+v, row %q, want %q stored", r, w.Rows["k"].Value, tc.wantValue)
			}
			// The validator's schema and document go to the store with the value.
			var doc []byte
			schema := uint32(0)
			if tc.mut.JSON {
				doc, schema = tc.mut.Value, typedSchema
			}
			var got *store.Mutation
			for i := range w.Applied {
				if string(w.Applied[i].Key) == "k" {
					got = &w.Applied[i]
				}
			}
			if got == nil || got.SchemaID != schema || string(got.Doc) != string(doc) || w.Rows["k"].SchemaID != schema {
				t.Fatalf("stored %+v, want schema %d and document %q", got, schema, doc)
			}
			if tc.validator && v.calls != 2 {
				t.Fatalf("validator called %d times for 2 mutations", v.calls)
			}
		})
	}
}

// bracePrinter prints a value as JSON by wrapping it in braces, and
// records the table it was asked for.
type bracePrinter struct{ table string }

func (b *bracePrinter) JSON(_ context.Context, t catalog.Table, value []byte) ([]byte, error) {
	b.table = t.Name
	return []byte("{" + string(value) + "}"), nil
}

// TestValueJSON: Get's JSON form of a value comes from the Printer, given
// the table; an untyped table, or no Printer, is invalid_argument naming
// the table (its values have no JSON form), an unknown table not_found.
func TestValueJSON(t *testing.T) {
	t.Parallel()
	tbs := tables{
		"typed": {Name: "typed", ValueMessage: "shop.Order"},
		"plain": {Name: "plain"},
	}
	p := New(nil, nil, tbs, mustClock(t), Limits{}, nil)
	if _, err := p.ValueJSON(t.Context(), "typed", []byte("v")); !errors.Is(err, ErrNoJSON) || !strings.Contains(err.Error(), "table typed is not typed") {
		t.Errorf("no Printer set: %v, want ErrNoJSON naming the table", err)
	}
	pr := &bracePrinter{}
	p.SetPrinter(pr)
	if got, err := p.ValueJSON(t.Context(), "typed", []byte("v")); err != nil || string(got) != "{v}" || pr.table != "typed" {
		t.Errorf("typed table: %q, %v (printed for table %q); want {v} from the Printer for typed", got, err, pr.table)
	}
	if _, err := p.ValueJSON(t.Context(), "plain", []byte("v")); !errors.Is(err, ErrNoJSON) || !strings.Contains(err.Error(), "table plain is not typed") {
		t.Errorf("untyped table: %v, want ErrNoJSON naming the table", err)
	}
	if _, err := p.ValueJSON(t.Context(), "nope", []byte("v")); !errors.Is(err, ErrUnknownTable) || errors.Is(err, ErrNoJSON) {
		t.Errorf("unknown table: %v, want ErrUnknownTable", err)
	}
}
