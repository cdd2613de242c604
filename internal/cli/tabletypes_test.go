package cli

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/server/servertest"
)

// TestTypedTableCommands: wail table create --value-proto makes a typed
// table; wail put writes the same row as binary (--hex) and as JSON
// (--value-json); a value that does not fit is refused naming the field;
// wail table alter evolves the schema (refusing an incompatible one) and
// turns validation off.
func TestTypedTableCommands(t *testing.T) {
	t.Parallel()
	url := servertest.Start(t, nil)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v1 := write("v1.proto", `syntax = "proto3"; package shop; message Order { string id = 1; int64 cents = 2; }`)
	v2 := write("v2.proto", `syntax = "proto3"; package shop; message Order { string id = 1; int64 cents = 2; string note = 3; }`)
	bad := write("bad.proto", `syntax = "proto3"; package shop; message Order { int32 id = 1; }`)
	// shop.Order{id: "o-1", cents: 1250} in Protobuf binary.
	const row = "0a036f2d3110e209"
	runSteps(t, url, []step{
		{args: []string{"table", "create", "orders", "--value-proto", v1, "--value-message", "shop.Order"},
			want: []string{"created table orders", "key bytes, value shop.Order, validation on"}},
		{args: []string{"put", "orders", "6f2d31", row, "--hex"}, want: []string{"stored"}},
		{args: []string{"put", "orders", "json", `{"id":"o-1","cents":1250}`, "--value-json"}, want: []string{"stored"}},
		{args: []string{"get", "orders", "6a736f6e", "--hex"}, want: []string{row}},
		{args: []string{"get", "orders", "o-1", "--value-json"}, want: []string{`{"id":"o-1","cents":"1250"}`}},
		{args: []string{"get", "orders", "o-1", "--value-json", "--json"}, want: []string{`"valueJson":`, `cents`}},
		{args: []string{"put", "orders", "k", `{"id":"o-1","colour":"red"}`, "--value-json"}, wantCode: 1, wantErr: "colour"},
		{args: []string{"put", "orders", "6b", "0a036f2d311a0167", "--hex"}, wantCode: 1, wantErr: "field number 3 is not in shop.Order"},
		{args: []string{"tail", "orders", "--from", "beginning", "--value-json"}, timeout: 2 * time.Second,
			want: []string{`key=json version=N value={"id":"o-1","cents":"1250"}`, `key=o-1 version=N value={"id":"o-1","cents":"1250"}`}},
		{args: []string{"table", "create", "plain"}, want: []string{"created table plain"}},
		{args: []string{"tail", "plain", "--value-json"}, wantCode: 2, wantErr: "not typed"},
		{args: []string{"table", "alter", "orders", "--value-proto", bad}, wantCode: 1, wantErr: "incompatible"},
		{args: []string{"table", "alter", "orders", "--value-proto", v2}, want: []string{"altered table orders"}},
		{args: []string{"put", "orders", "6b", "0a036f2d311a0167", "--hex"}, want: []string{"stored"}},
		{args: []string{"table", "alter", "orders", "--validate=false"}, want: []string{"validation off"}},
		{args: []string{"put", "orders", "6b", "ff", "--hex"}, want: []string{"stored"}},
		{args: []string{"table", "create", "x", "--value-message", "Order"}, wantCode: 2, wantErr: "need --value-proto"},
	})
}
