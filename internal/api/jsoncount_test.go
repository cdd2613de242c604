package api

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// TestCountJSONMutations: the elements of "mutations" are counted however
// the JSON is spelled (nested objects and arrays, strings with brackets
// and escapes, an escaped key, other fields before and after), up to one
// past the limit.
func TestCountJSONMutations(t *testing.T) {
	cases := []struct {
		name  string
		json  string
		limit int
		want  int
	}{
		{"none", `{}`, 10, 0},
		{"empty", `{"mutations":[]}`, 10, 0},
		{"null", `{"mutations":null}`, 10, 0},
		{"three", `{"mutations":[{},{},{}]}`, 10, 3},
		{"spaces", " {\n \"mutations\" : [ {} ,\t{ } ] } ", 10, 2},
		{"nested values", `{"mutations":[{"table":"t","key":"YQ==","value":"e30="},{"table":"t","key":"Yg==","typed":{"a":[1,{"b":"]}"}]}}]}`, 10, 2},
		{"brackets and escapes in strings", `{"mutations":[{"table":"a\"],{","key":"\\"},{}]}`, 10, 2},
		{"escaped key", `{"mut\u0061tions":[{},{}]}`, 10, 2},
		{"other fields around", `{"seq":"7","mutations":[{}],"x":{"mutations":[{},{}]}}`, 10, 1},
		{"stops past the limit", `{"mutations":[{},{},{},{},{}]}`, 2, 3},
		{"malformed after some", `{"mutations":[{},{} {}]}`, 10, 2},
		{"not an object", `[{},{}]`, 10, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := countJSONMutations([]byte(tc.json), tc.limit); got != tc.want {
				t.Fatalf("counted %d, want %d", got, tc.want)
			}
		})
	}
}

// FuzzCountJSONMutations: whenever protojson decodes a body as a
// WriteRequest or WriteStreamRequest, the count is its number of
// mutations (so a body over the cap is never decoded).
func FuzzCountJSONMutations(f *testing.F) {
	for _, s := range []string{`{}`, `{"mutations":[{},{}]}`, `{"seq":"3","mutations":[{"table":"t","key":"YQ=="}]}`,
		`{"mut\u0061tions":[{}]}`, `{"mutations":[{"table":"]\"}"}],"seq":1}`, `{"mutations":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var w wailv1.WriteRequest
		if protojson.Unmarshal(b, &w) == nil {
			if got := countJSONMutations(b, 1<<30); got != len(w.Mutations) {
				t.Fatalf("%q: counted %d, protojson decoded %d", b, got, len(w.Mutations))
			}
		}
		var s wailv1.WriteStreamRequest
		if protojson.Unmarshal(b, &s) == nil {
			if got := countJSONMutations(b, 1<<30); got != len(s.Mutations) {
				t.Fatalf("%q: counted %d, protojson decoded %d (stream)", b, got, len(s.Mutations))
			}
		}
	})
}

// TestMountCapsJSONBatches: through Mount, a JSON Write over
// Services.MaxBatch is refused with InvalidArgument naming the limit
// before it is decoded, and nothing is written; at the cap it is written.
func TestMountCapsJSONBatches(t *testing.T) {
	t.Parallel()
	w := &world{}
	mux := NewMux()
	svc := Unimplemented()
	svc.Producer, svc.MaxBatch = NewProducerService(newProxy(t, w)), 2
	Mount(mux, svc)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, srv.URL, connect.WithProtoJSON())
	batch := []*wailv1.Mutation{{Table: "tx", Key: []byte("a")}, {Table: "tx", Key: []byte("b")}, {Table: "tx", Key: []byte("c")}}
	_, err := pc.Write(context.Background(), connect.NewRequest(&wailv1.WriteRequest{Mutations: batch}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "batch has more than 2 mutations, the limit is 2 (limits.max_batch_mutations)") {
		t.Fatalf("a JSON batch over the cap: %v", err)
	}
	// Empty mutations, the cheapest in JSON: refused as well, as raw JSON.
	body := "{\"mutations\":[" + strings.TrimSuffix(strings.Repeat("{},", 100000), ",") + "]}"
	resp, err := http.Post(srv.URL+wailv1connect.ProducerServiceWriteProcedure, "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	var msg bytes.Buffer
	_, _ = msg.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg.String(), "limits.max_batch_mutations") {
		t.Fatalf("100,000 empty JSON mutations: %d %s", resp.StatusCode, msg.String())
	}
	w.Mu.Lock()
	calls := len(w.Calls)
	w.Mu.Unlock()
	if calls != 0 {
		t.Fatalf("a refused batch reached the log or store: %d calls", calls)
	}
	ok, err := pc.Write(context.Background(), connect.NewRequest(&wailv1.WriteRequest{Mutations: batch[:2]}))
	if err != nil || len(ok.Msg.Results) != 2 || !ok.Msg.Results[1].Stored {
		t.Fatalf("a JSON batch at the cap: %v, %v", ok, err)
	}
}
