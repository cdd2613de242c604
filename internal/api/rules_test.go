package api

import (
	"testing"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/auth"
)

// TestEveryProcedureHasARule: a new RPC without a permission fails here
// (and is refused at run time when auth is on).
func TestEveryProcedureHasARule(t *testing.T) {
	t.Parallel()
	methods := Methods()
	if len(methods) < 15 {
		t.Fatalf("found %d methods in wail.v1; the descriptors are not all seen", len(methods))
	}
	seen := map[string]bool{}
	for _, m := range methods {
		p := Procedure(m)
		seen[p] = true
		if _, ok := Rule(p); !ok {
			t.Errorf("%s has no permission: add it to rules (internal/api/rules.go)", p)
		}
	}
	for p := range rules {
		if !seen[p] {
			t.Errorf("rules names %s, which no service has", p)
		}
	}
}

func TestTablesOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		m    proto.Message
		want []string
	}{
		{&wailv1.PutRequest{Table: "orders"}, []string{"orders"}},
		{&wailv1.CreateTableRequest{Name: "orders"}, []string{"orders"}},
		// a sink's requests name the sink too: the table is "table"
		{&wailv1.DescribeSinkRequest{Table: "orders", Name: "hook"}, []string{"orders"}},
		// a repeated scalar (offsets) names no table
		{&wailv1.RedriveDeadLettersRequest{Table: "orders", Offsets: []int64{1, 2}, Sink: "hook"}, []string{"orders"}},
		{&wailv1.ListTablesRequest{}, nil},
		{&wailv1.WriteRequest{Mutations: []*wailv1.Mutation{{Table: "a"}, {Table: "b"}, {Table: "a"}}}, []string{"a", "b"}},
		{&wailv1.WriteRequest{}, nil},
		{&wailv1.SubscribeRequest{Table: ""}, []string{""}},
	} {
		got := tablesOf(tc.m)
		if len(got) != len(tc.want) {
			t.Errorf("%T %v: tables %q, want %q", tc.m, tc.m, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%T %v: tables %q, want %q", tc.m, tc.m, got, tc.want)
			}
		}
	}
	// A Write of no mutation names no table: it needs produce on every
	// table ("*"), which a grant on one table does not give.
	if auth.Allowed([]auth.Grant{{Permission: auth.Produce, Tables: "t"}}, auth.Produce, tablesOf(&wailv1.WriteRequest{})) {
		t.Error("an empty Write passed with a grant on one table")
	}
}

// TestCovered changes endpoints: not parallel.
func TestCovered(t *testing.T) {
	endpoints["/test-prefix/"] = Endpoint{Read: auth.Read, Write: auth.Admin}
	defer delete(endpoints, "/test-prefix/")
	for pattern, want := range map[string]bool{
		"/metrics": true, "/healthz": true, "/wail.v1.ProducerService/": true, "GET /test-prefix/x/{id}": true,
		"/test-prefix/": true, "/test-prefixx": false, "/debug/pprof/": false, "/": false, "GET /metricsx": false,
	} {
		if got := Covered(pattern); got != want {
			t.Errorf("Covered(%q) = %v, want %v", pattern, got, want)
		}
	}
}
