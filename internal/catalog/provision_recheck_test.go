package catalog

import (
	"testing"
	"time"
)

// TestProvisionAfterLocalChange: a provision whose read of the catalog
// came before a local change reads the table's entry again and makes its
// topics only while the store holds that same table ready: served when it
// does, not served (no error) when the table is gone or was created again.
func TestProvisionAfterLocalChange(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cat := openCatalog(t, openStore(t), newTopics())
	if _, _, err := cat.Create(ctx, Table{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	e, found, err := cat.load(ctx, "t")
	if err != nil || !found || e.t.State != Ready {
		t.Fatalf("load: %+v %v %v", e.t, found, err)
	}
	tb := e.t
	again, gone := tb, tb
	again.CreatedAt = tb.CreatedAt.Add(time.Second)
	gone.Name = "gone"
	for _, tc := range []struct {
		name   string
		t      Table
		served bool
	}{
		{"ready as read", tb, true},
		{"created again since", again, false},
		{"gone", gone, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			served, err := cat.provision(ctx, tc.t, cat.opSeq()+1) // read before a local change
			if err != nil || served != tc.served {
				t.Fatalf("served %v, %v; want %v, nil", served, err, tc.served)
			}
		})
	}
}

// TestProvisionWhileDropping: after a local change, a provision makes the
// topics of a table the store holds dropping (it takes no writes, but its
// resolvers still run and need them) and not of one it holds deleting
// (its topics are going).
func TestProvisionWhileDropping(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cat := openCatalog(t, openStore(t), newTopics())
	if _, _, err := cat.Create(ctx, Table{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	e, found, err := cat.load(ctx, "t")
	if err != nil || !found {
		t.Fatalf("load: %v %v", found, err)
	}
	tb := e.t
	for _, tc := range []struct {
		state  State
		served bool
	}{{Dropping, true}, {Deleting, false}} {
		next := e.t
		next.State = tc.state
		if e, err = cat.swap(ctx, e.spec, next, false, false); err != nil {
			t.Fatal(err)
		}
		served, err := cat.provision(ctx, tb, cat.opSeq()+1) // read before a local change
		if err != nil || served != tc.served {
			t.Errorf("the store holds the table %s: served %v, %v; want %v, nil", tc.state, served, err, tc.served)
		}
	}
}
