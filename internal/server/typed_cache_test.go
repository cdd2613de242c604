package server

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/schemaregistry"
)

// gatedStorage is a registry document in memory whose first Load after
// arm is held until release, the document already read: a read of a
// subject's latest schema made before a change and answered after it.
type gatedStorage struct {
	mu       sync.Mutex
	doc      []byte
	armed    atomic.Bool
	read     chan struct{}
	released chan struct{}
}

func (s *gatedStorage) Load(context.Context) ([]byte, error) {
	s.mu.Lock()
	doc := s.doc
	s.mu.Unlock()
	if s.armed.CompareAndSwap(true, false) {
		close(s.read)
		<-s.released
	}
	return doc, nil
}

func (s *gatedStorage) Swap(_ context.Context, old, new []byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if string(s.doc) != string(old) {
		return false, nil
	}
	s.doc = new
	return true, nil
}

// TestDeleteDuringSchemaRead: a write read a subject's latest schema
// before the subject was deleted through this process and caches it after
// the delete; the next write does not take the deleted schema (it was
// taken, and its id given to events, for catalog_refresh).
func TestDeleteDuringSchemaRead(t *testing.T) {
	ctx := context.Background()
	st := &gatedStorage{read: make(chan struct{}), released: make(chan struct{})}
	reg := schemaregistry.New(st, schemaregistry.Limits{})
	s := &Server{schemas: reg}
	v := newTypedValues(s, time.Hour)
	reg.OnChange(v.forget)
	subject := s.subject("t", partValue)
	req := schemaregistry.SchemaRequest{SchemaType: schemaregistry.Protobuf,
		Schema: "syntax = \"proto3\";\npackage shop;\nmessage Order { string id = 1; }\n"}
	if _, err := reg.Register(ctx, subject, req); err != nil {
		t.Fatal(err)
	}
	st.armed.Store(true)
	read := make(chan error, 1)
	go func() {
		_, err := v.message(ctx, "t", partValue, "shop.Order")
		read <- err
	}()
	<-st.read // that write has read the document with the subject
	if _, err := reg.DeleteSubject(ctx, subject, false); err != nil {
		t.Fatal(err)
	}
	close(st.released)
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	if c, err := v.message(ctx, "t", partValue, "shop.Order"); err == nil {
		t.Fatalf("a write after the delete took the deleted schema (id %d)", c.id)
	}
}
