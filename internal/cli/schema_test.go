package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/server/servertest"
)

func TestSchemaCommands(t *testing.T) {
	t.Parallel()
	url := servertest.Start(t, nil)
	dir := t.TempDir()
	file := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	money := file("money.proto", `syntax = "proto3"; package shop.money; message Money { int64 units = 1; }`)
	v1 := file("v1.proto", `syntax = "proto3"; package shop; import "shop/money.proto"; message Order { string id = 1; shop.money.Money total = 2; }`)
	v2 := file("v2.proto", `syntax = "proto3"; package shop; import "shop/money.proto"; message Order { string id = 1; shop.money.Money total = 2; string note = 3; }`)
	bad := file("bad.proto", `syntax = "proto3"; package shop; import "shop/money.proto"; message Order { int64 id = 1; shop.money.Money total = 2; }`)
	broken := file("broken.proto", "syntax = \"proto3\";\nmessage {")
	ref := "--ref=shop/money.proto=shop.money:1"
	for _, step := range []struct {
		args       []string
		wantCode   int
		wantOut    string
		wantErrOut string
	}{
		{args: []string{"schema", "register", "shop.money", money}, wantOut: "shop.money version 1: schema id 1\n"},
		{args: []string{"schema", "register", "orders-value", v1, ref}, wantOut: "orders-value version 1: schema id 2\n"},
		{args: []string{"schema", "register", "orders-value", v1, ref}, wantOut: "orders-value version 1: schema id 2\n"},
		{args: []string{"schema", "register", "orders-value", v1}, wantCode: 1, wantErrOut: "add it as a reference"},
		{args: []string{"schema", "register", "orders-value", broken}, wantCode: 1, wantErrOut: "schema.proto:2:9"},
		{args: []string{"schema", "register", "orders-value", v1, "--ref=nonsense"}, wantCode: 2, wantErrOut: "use PATH=SUBJECT:VERSION"},
		{args: []string{"schema", "check", "orders-value", v2, ref}, wantOut: "compatible with orders-value\n"},
		{args: []string{"schema", "check", "orders-value", bad, ref}, wantCode: 1,
			wantOut: "incompatible with orders-value:\n  {errorType:\"FIELD_SCALAR_KIND_CHANGED\""},
		{args: []string{"schema", "register", "orders-value", bad, ref}, wantCode: 1,
			wantErrOut: "details:\n  {errorType:\"FIELD_SCALAR_KIND_CHANGED\", description:\"The kind of a SCALAR field at path '#/Order/1'"},
		{args: []string{"schema", "register", "orders-value", v2, "--ref=shop/money.proto=shop.money:latest"}, wantOut: "orders-value version 2: schema id 3\n"},
		{args: []string{"schema", "ls"}, wantOut: "SUBJECT       VERSIONS  LATEST  ID  COMPATIBILITY\norders-value  2         2       3   BACKWARD\nshop.money    1         1       1   BACKWARD\n"},
		{args: []string{"schema", "ls", "orders"}, wantOut: "orders-value  2"},
		{args: []string{"schema", "show", "orders-value", "1"},
			wantOut: "// subject orders-value version 1, schema id 2; imports shop/money.proto from shop.money version 1\nsyntax = \"proto3\"; package shop;"},
		{args: []string{"schema", "show", "orders-value", "--json"}, wantOut: `"subject":"orders-value","version":2,"id":3`},
		{args: []string{"schema", "show", "orders-value", "9"}, wantCode: 1, wantErrOut: "Version 9 not found. (HTTP 404, error code 40402)"},
		{args: []string{"schema", "show", "nope"}, wantCode: 1, wantErrOut: "Subject 'nope' not found."},
		{args: []string{"schema", "diff", "orders-value", "1", "2"}, wantOut: "FIELD_ADDED  #/Order/3  compatible  field note (shop.Order.note) added\n"},
		{args: []string{"schema", "diff", "orders-value", "latest", bad, ref}, wantCode: 1,
			wantOut: "FIELD_SCALAR_KIND_CHANGED  #/Order/1  BREAKS", wantErrOut: "1 of 2 differences break readers of latest on "},
		{args: []string{"schema", "diff", "orders-value", "2", "latest"}, wantOut: "no differences\n"},
		{args: []string{"schema", "diff", "orders-value", "first"}, wantCode: 2, wantErrOut: "use a positive number or latest"},
	} {
		code, out, errOut := runCLI(t.Context(), url, "", step.args...)
		if code != step.wantCode || !strings.Contains(out, step.wantOut) || !strings.Contains(errOut, step.wantErrOut) {
			t.Fatalf("wail %s: code %d\nstdout: %s\nstderr: %s\nwant code %d, stdout with %q, stderr with %q",
				strings.Join(step.args, " "), code, out, errOut, step.wantCode, step.wantOut, step.wantErrOut)
		}
	}
}
