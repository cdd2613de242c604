package schemaregistry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// memStorage is a Storage in memory, holding whatever bytes it is given.
type memStorage struct {
	mu  sync.Mutex
	doc []byte
}

func (m *memStorage) Load(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.doc), nil
}

func (m *memStorage) Swap(_ context.Context, old, new []byte) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !bytes.Equal(old, m.doc) || (old == nil) != (m.doc == nil) {
		return false, nil
	}
	m.doc = bytes.Clone(new)
	return true, nil
}

// FuzzDecodeState: the registry's document is read from the store, which
// other processes (and other versions of wail) write: whatever it holds,
// every request is answered, never a panic; a document that decodes
// encodes to one that decodes the same.
func FuzzDecodeState(f *testing.F) {
	ctx := context.Background()
	// Seeds: real documents, made by the registry itself.
	src := &memStorage{}
	h := Handler(New(src, Limits{}), slog.New(slog.DiscardHandler), nil)
	reg, _ := json.Marshal(SchemaRequest{Schema: orderV1, SchemaType: Protobuf})
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/subjects/a/versions", string(reg)},
		{"PUT", "/config/a", `{"compatibility":"FULL"}`},
		{"POST", "/subjects/b/versions", string(reg)},
		{"DELETE", "/subjects/b/versions/1", ""},
		{"PUT", "/mode", `{"mode":"IMPORT"}`},
	} {
		httptestRecorder(h, httptest.NewRequest(r.method, r.path, strings.NewReader(r.body)))
		doc, _ := src.Load(ctx)
		f.Add(doc)
	}
	f.Add([]byte(`{"next_id":2,"schemas":{"1":null},"subjects":{"a":null}}`))
	f.Add([]byte(`{"next_id":1,"subjects":{"a":{"versions":[{"version":1,"id":7}]}}}`))
	f.Add([]byte(`{"schemas":{"1":{"schema":"x","references":[{"name":"x","subject":"a","version":1}]}},"subjects":{"a":{"versions":[{"version":1,"id":1}]}}}`))
	requests := []struct{ method, path, body string }{
		{"GET", "/subjects", ""},
		{"GET", "/subjects?deleted=true", ""},
		{"GET", "/subjects/a/versions", ""},
		{"GET", "/subjects/a/versions?deleted=true", ""},
		{"GET", "/subjects/a/versions/latest", ""},
		{"GET", "/subjects/a/versions/1", ""},
		{"GET", "/subjects/a/versions/1/schema", ""},
		{"GET", "/subjects/a/versions/latest/schema?deleted=true", ""},
		{"GET", "/subjects/a/versions/1/referencedby", ""},
		{"GET", "/schemas/ids/1", ""},
		{"GET", "/schemas/ids/1/schema", ""},
		{"GET", "/schemas/ids/1/subjects?deleted=true", ""},
		{"GET", "/schemas/ids/1/versions?deleted=true", ""},
		{"GET", "/config", ""},
		{"GET", "/config/a", ""},
		{"GET", "/mode", ""},
		{"GET", "/mode/a", ""},
		{"POST", "/subjects/a", string(reg)},
		{"POST", "/compatibility/subjects/a/versions/latest?verbose=true", string(reg)},
		{"POST", "/subjects/a/versions", string(reg)},
		{"POST", "/subjects/c/versions", string(reg)},
		{"DELETE", "/subjects/a/versions/1", ""},
		{"DELETE", "/subjects/a/versions/1?permanent=true", ""},
		{"DELETE", "/subjects/a", ""},
		{"DELETE", "/subjects/a?permanent=true", ""},
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if st, err := decodeState(doc); err == nil {
			b, err := st.encode()
			if err != nil {
				t.Fatalf("a decoded document does not encode: %v", err)
			}
			st2, err := decodeState(b)
			if err != nil {
				t.Fatalf("a re-encoded document does not decode: %v\n%s", err, b)
			}
			b2, _ := st2.encode()
			if !bytes.Equal(b, b2) {
				t.Fatalf("round trip changed the document:\n%s\n%s", b, b2)
			}
		}
		s := &memStorage{doc: bytes.Clone(doc)}
		h := Handler(New(s, Limits{}), slog.New(slog.DiscardHandler), nil)
		for _, r := range requests {
			httptestRecorder(h, httptest.NewRequest(r.method, r.path, strings.NewReader(r.body)))
		}
	})
}

// TestDecodeStateDamaged: a document with what no registry writes is
// refused when read, saying what is wrong, instead of a nil dereference
// in whichever request reads that part (a request that panicked).
func TestDecodeStateDamaged(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`{"next_id":2,"schemas":{"1":null}}`, "schema id 1 is null"},
		{`{"next_id":2,"subjects":{"a":null}}`, `subject "a" is null`},
		{`{"next_id":1,"subjects":{"a":{"versions":[{"version":1,"id":7}]}}}`, "schema id 7 is missing"},
		{`{"next_id":2,"schemas":{"1":{"schema":"x"}},"subjects":{"a":{"versions":[{"version":2,"id":1},{"version":1,"id":1}]}}}`, "version 1 after version 2"},
		{`{"next_id":2,"schemas":{"2":{"schema":"x"}}}`, "schema id 2 is outside"},
	} {
		_, err := decodeState([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("decodeState(%s) = %v, want an error saying %q", tc.doc, err, tc.want)
		}
		s := &memStorage{doc: []byte(tc.doc)}
		h := Handler(New(s, Limits{}), slog.New(slog.DiscardHandler), nil)
		if a := call(t, h, "GET", "/subjects/a/versions/latest", ""); a.code != 500 || !strings.Contains(a.body, "damaged") {
			t.Errorf("%s: GET latest = %d %s, want a 500 saying the document is damaged", tc.doc, a.code, a.body)
		}
	}
}
