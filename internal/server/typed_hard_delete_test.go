package server

import (
	"context"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/schemaregistry"
)

// TestHardDeletedID: a row written with a schema whose version was then
// deleted for good is published under a live version that reads it, not
// under the deleted id (which the registry no longer serves: a consumer
// fetching it could not decode the event), also when this process
// published under that id before the delete.
func TestHardDeletedID(t *testing.T) {
	ctx := context.Background()
	reg := schemaregistry.New(&gatedStorage{}, schemaregistry.Limits{})
	s := &Server{schemas: reg}
	v := newTypedValues(s, time.Hour)
	reg.OnChange(v.forget)
	subject := s.subject("t", partValue)
	register := func(text string) int {
		t.Helper()
		id, err := reg.Register(ctx, subject, schemaregistry.SchemaRequest{SchemaType: schemaregistry.Protobuf,
			Schema: "syntax = \"proto3\";\npackage shop;\nmessage Order { " + text + " }\n"})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	v1 := register("string id = 1;")
	tb := catalog.Table{Name: "t", ValueMessage: "shop.Order"}
	value := []byte{0x0a, 0x01, 'a'} // Order{id: "a"}
	if id, _, err := v.eventValue(ctx, tb, uint32(v1), value); err != nil || id != uint32(v1) {
		t.Fatalf("before the delete: id %d, %v; want %d", id, err, v1)
	}
	v2 := register("string id = 1; string note = 2;")
	for _, permanent := range []bool{false, true} {
		if _, err := reg.DeleteVersion(ctx, subject, 1, permanent); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reg.SchemaByID(ctx, v1); err == nil {
		t.Fatalf("schema %d still served after its version was deleted for good", v1)
	}
	id, _, err := v.eventValue(ctx, tb, uint32(v1), value)
	if err != nil || id != uint32(v2) {
		t.Fatalf("after the delete: published under id %d (%v); want %d: id %d is not served any more", id, err, v2, v1)
	}
}

// TestHardDeleteDuringIDRead: a schema read by id before its version was
// deleted for good through this process, and cached after the delete, is
// not taken by the next event (it was, for good).
func TestHardDeleteDuringIDRead(t *testing.T) {
	ctx := context.Background()
	st := &gatedStorage{read: make(chan struct{}), released: make(chan struct{})}
	reg := schemaregistry.New(st, schemaregistry.Limits{})
	s := &Server{schemas: reg}
	v := newTypedValues(s, time.Hour)
	reg.OnChange(v.forget)
	subject := s.subject("t", partValue)
	var ids []int
	for _, text := range []string{"string id = 1;", "string id = 1; string note = 2;"} {
		id, err := reg.Register(ctx, subject, schemaregistry.SchemaRequest{SchemaType: schemaregistry.Protobuf,
			Schema: "syntax = \"proto3\";\npackage shop;\nmessage Order { " + text + " }\n"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	tb := catalog.Table{Name: "t", ValueMessage: "shop.Order"}
	value := []byte{0x0a, 0x01, 'a'} // Order{id: "a"}
	st.armed.Store(true)
	read := make(chan error, 1)
	go func() {
		_, err := v.messageByID(ctx, uint32(ids[0]), tb.ValueMessage)
		read <- err
	}()
	<-st.read // that event has read the document with schema ids[0]
	for _, permanent := range []bool{false, true} {
		if _, err := reg.DeleteVersion(ctx, subject, 1, permanent); err != nil {
			t.Fatal(err)
		}
	}
	close(st.released)
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	if id, _, err := v.eventValue(ctx, tb, uint32(ids[0]), value); err != nil || id != uint32(ids[1]) {
		t.Fatalf("published under id %d (%v) after its version was deleted for good; want %d", id, err, ids[1])
	}
}
