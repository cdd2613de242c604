package catalog

import (
	"context"
	"errors"
	"testing"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// TestEntryOfANewerVersion: a catalog entry saved by a newer wail (one
// sharing the store in a rolling upgrade). A state this version does not
// know is not one it may decide on: the table is neither served nor
// dropped without force (a drop took it for one without writes, skipped
// the check of unresolved intents and in-flight writes, and removed its
// topics and rows). Fields this version does not know are kept by its
// changes (an alter dropped them: what a newer version saved with the
// entry, such as a window hold, was lost to every process).
func TestEntryOfANewerVersion(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	unresolved := DropHooks{
		Progress: func(context.Context, Table) ([]int64, []int64, error) { return []int64{5}, []int64{2}, nil },
		Stopped:  func(context.Context, Table) error { return nil },
	}

	t.Run("unknown state", func(t *testing.T) {
		t.Parallel()
		st := openStore(t)
		c := openCatalog(t, st, newTopics())
		if _, _, err := c.Create(ctx, Table{Name: "t", Partitions: 1}); err != nil {
			t.Fatal(err)
		}
		e, _ := c.lookup("t")
		p := e.t.Proto()
		p.State = wailv1.TableState(9)
		spec, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, err := st.SwapTable(ctx, "t", e.spec, spec); err != nil || !ok {
			t.Fatalf("saving the entry: %v %v", ok, err)
		}
		if err := c.Refresh(ctx); err == nil {
			t.Error("a refresh reported no problem with a table in a state it does not know")
		}
		if _, ok := c.Get("t"); ok {
			t.Error("a table in an unknown state is served")
		}
		if err := c.Drop(ctx, "t", false, unresolved); err == nil {
			t.Fatal("a drop without force removed a table in a state it does not know, with unresolved intents")
		}
		if rows, err := st.Tables(ctx); err != nil || len(rows) != 1 {
			t.Fatalf("the entry is gone: %v %v", rows, err)
		}
		if err := c.Drop(ctx, "t", true, unresolved); err != nil {
			t.Fatalf("a forced drop: %v", err)
		}
	})

	t.Run("unknown field kept by an alter", func(t *testing.T) {
		t.Parallel()
		st := openStore(t)
		c := openCatalog(t, st, newTopics())
		if _, _, err := c.Create(ctx, Table{Name: "t", Partitions: 1}); err != nil {
			t.Fatal(err)
		}
		e, _ := c.lookup("t")
		unknown := protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 42)
		spec := append(append([]byte(nil), e.spec...), unknown...)
		if _, ok, err := st.SwapTable(ctx, "t", e.spec, spec); err != nil || !ok {
			t.Fatalf("saving the entry: %v %v", ok, err)
		}
		if err := c.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Alter(ctx, "t", Alter{FailureMode: ptr(Independent)}); err != nil {
			t.Fatal(err)
		}
		rows, err := st.Tables(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.Name != "t" {
				continue
			}
			var p wailv1.Table
			if err := proto.Unmarshal(r.Spec, &p); err != nil {
				t.Fatal(err)
			}
			if p.FailureMode != wailv1.FailureMode(Independent) {
				t.Errorf("the alter was not saved: %v", p.FailureMode)
			}
			if got := p.ProtoReflect().GetUnknown(); string(got) != string(unknown) {
				t.Errorf("the alter saved unknown fields %x, want the entry's %x", got, unknown)
			}
			return
		}
		t.Fatal(errors.New("the entry is gone"))
	})
}
