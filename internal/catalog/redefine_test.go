package catalog

import (
	"errors"
	"testing"
)

// TestCreateOfAnotherTypeConflicts: a create of a typed table's name with
// another key or value message, or another validation setting, is not the
// same definition: ErrConflict, naming the saved one. Taken for the same,
// it answered the create as done, and writers checked their values
// against message types the table does not have.
func TestCreateOfAnotherTypeConflicts(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := openCatalog(t, openStore(t), newTopics())
	typed := Table{Name: "orders", KeyMessage: "shop.OrderKey", ValueMessage: "shop.Order"}
	if _, created, err := c.Create(ctx, typed); err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if _, created, err := c.Create(ctx, typed); err != nil || created {
		t.Fatalf("the same create again: %v %v", created, err)
	}
	for _, other := range []Table{
		{Name: "orders", KeyMessage: "shop.Other", ValueMessage: "shop.Order"},
		{Name: "orders", KeyMessage: "shop.OrderKey", ValueMessage: "shop.Other"},
		{Name: "orders", ValueMessage: "shop.Order"},
		{Name: "orders", KeyMessage: "shop.OrderKey"},
		{Name: "orders", KeyMessage: "shop.OrderKey", ValueMessage: "shop.Order", SkipValidation: true},
	} {
		if got, created, err := c.Create(ctx, other); !errors.Is(err, ErrConflict) || created || got.KeyMessage != typed.KeyMessage || got.ValueMessage != typed.ValueMessage {
			t.Errorf("create %s over %s: %+v %v %v, want ErrConflict with the saved definition", other.Describe(), typed.Describe(), got, created, err)
		}
	}
}
