package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/proxy/proxytest"
	"github.com/wail-cdc/wail/internal/store"
)

// limitedStore is a store that takes rows (key and value) and documents
// of at most limit bytes, and says so (store.MutationLimiter); a larger
// one is refused before it is written, as Cassandra refuses a request
// larger than its frame or mutation limit, MariaDB a parameter larger
// than its max_allowed_packet. A delete's value is not written (the SQL
// stores and Cassandra drop it, sqlstore.NewBatch), so it does not count.
type limitedStore struct {
	Store
	limit int
}

func (l limitedStore) MutationLimit() (int, string) { return l.limit, "the test store's limit" }

func (l limitedStore) Apply(ctx context.Context, table string, muts []store.Mutation) ([]store.Outcome, error) {
	for _, m := range muts {
		n := len(m.Key)
		if !m.Delete { // a tombstone has no value: sqlstore.NewBatch drops it
			n += len(m.Value)
		}
		if n > l.limit || len(m.Doc) > l.limit {
			return nil, fmt.Errorf("%w: request too big", store.ErrNotApplied)
		}
	}
	return l.Store.Apply(ctx, table, muts)
}

// TestStoreMutationLimit: a row (or a typed value's JSON document, which
// a DocumentStore keeps too) larger than the store takes is refused
// before it is stamped (InvalidArgument, naming the store's limit), not
// logged, tried, aborted and answered "unavailable, retry", which a retry
// can never cure; a row at the limit is written.
func TestStoreMutationLimit(t *testing.T) {
	t.Parallel()
	const limit = 10
	tests := []struct {
		name    string
		m       Mutation
		wantErr string
	}{
		{"at the limit", Mutation{Table: "tx", Key: []byte("key"), Value: make([]byte, limit-3)}, ""},
		{"a delete of a key at the limit", Mutation{Table: "tx", Key: []byte("12345678"), Delete: true}, ""},
		// The API passes a delete's binary value on; every store drops it
		// (a tombstone has no value), so it does not count.
		{"a delete that carries a value", Mutation{Table: "tx", Key: []byte("key"), Value: make([]byte, limit), Delete: true}, ""},
		{"one byte over", Mutation{Table: "tx", Key: []byte("key"), Value: make([]byte, limit-2)},
			"key and value are 11 bytes; the store takes rows of at most 10 bytes (the test store's limit)"},
		{"over with the key alone", Mutation{Table: "tx", Key: []byte("12345678"), Value: make([]byte, 3)}, "are 11 bytes"},
		{"a document at the limit", Mutation{Table: "tx", Key: []byte("key"), Value: []byte("v"), Doc: make([]byte, limit)}, ""},
		{"a document over", Mutation{Table: "tx", Key: []byte("key"), Value: []byte("v"), Doc: make([]byte, limit+1)},
			"the value's JSON document is 11 bytes; the store takes at most 10 bytes (the test store's limit)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := &world{Rows: map[string]store.Row{}}
			clock, err := hlc.New(3, nil)
			if err != nil {
				t.Fatal(err)
			}
			p := New(w.Log(), limitedStore{Store: w.Store(), limit: limit}, proxytest.TxAndInd(time.Second), clock,
				Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 10}, nil)
			r := p.Write(context.Background(), []Mutation{tc.m})[0]
			if tc.wantErr == "" {
				if r.Err != nil || !r.Stored {
					t.Fatalf("result %+v", r)
				}
				return
			}
			if !errors.Is(r.Err, ErrInvalid) || !strings.Contains(r.Err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %v containing %q", r.Err, ErrInvalid, tc.wantErr)
			}
			if len(w.Calls) != 0 || len(w.Intents) != 0 {
				t.Fatalf("a row the store cannot take reached the log or the store: %v, intents %+v", w.Calls, w.Intents)
			}
		})
	}
}
