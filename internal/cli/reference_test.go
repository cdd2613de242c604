package cli

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
)

var update = flag.Bool("update", false, "rewrite docs/reference.md from the commands and the configuration")

const referencePath = "../../docs/reference.md"

// TestReference: docs/reference.md is what the commands and the
// configuration say about themselves. Run with -update after changing a
// command, a flag or a configuration key.
func TestReference(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	b.WriteString("# wail reference\n\n" +
		"Every command, flag and configuration key, generated from the commands and from\n" +
		"`internal/config` (`go test ./internal/cli -run TestReference -update`; the test\n" +
		"fails when this file is stale). README.md explains what they are for.\n\n")
	writeCommands(&b)
	if undocumented := writeConfig(t, &b); len(undocumented) > 0 {
		t.Errorf("configuration keys without a doc comment in internal/config: %v", undocumented)
	}
	got := b.String()
	if *update {
		if err := os.WriteFile(referencePath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != got {
		t.Fatalf("docs/reference.md is stale: run go test ./internal/cli -run TestReference -update\n%s", firstDiff(string(want), got))
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n  file:      %q\n  generated: %q", i+1, x, y)
		}
	}
	return ""
}

// --- commands ----------------------------------------------------------------

func writeCommands(b *bytes.Buffer) {
	g := &globals{env: env{getenv: func(string) string { return "" }}}
	root := newRootCmd(g)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	b.WriteString("## Commands\n\n" +
		"Exit codes: 0 on success, 1 on errors, 2 on a wrong command line, 74 when serve, proxy or\n" +
		"resolve stopped after a storage failure (restart it), 130 when Ctrl-C or SIGTERM stopped a\n" +
		"command before it finished (serve and tail exit 0 then). Client commands talk\n" +
		"to the server at `--addr` (default `127.0.0.1:7070`, or `WAIL_ADDR`; http, or https with\n" +
		"`--ca`, `--cert` and `--key`), with the bearer token of `WAIL_TOKEN` or `--token-file`.\n" +
		"A wrong command line is refused before anything is sent: an empty argument (but a VALUE)\n" +
		"or one that is not UTF-8 (but keys, values and paths), an empty value of a flag where\n" +
		"empty would mean not given (`--config`, `--addr`, `--ca`, `--cursor`, `--from`, `--secret`,\n" +
		"serve's `--data-dir`, `--store`, `--dsn`, `--tls-*` files, ...), a duration the server\n" +
		"keeps in milliseconds that is not whole milliseconds.\n\n")
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden {
			return
		}
		if c != root {
			writeCommand(b, c)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func writeCommand(b *bytes.Buffer, c *cobra.Command) {
	fmt.Fprintf(b, "### `%s`\n\n", c.UseLine())
	text := c.Long
	if text == "" {
		text = c.Short
	}
	fmt.Fprintf(b, "%s\n\n", strings.TrimSpace(text))
	if c.HasAvailableSubCommands() {
		var subs []string
		for _, s := range c.Commands() {
			if !s.Hidden {
				subs = append(subs, "`"+s.Name()+"`")
			}
		}
		fmt.Fprintf(b, "Subcommands: %s.\n\n", strings.Join(subs, ", "))
	}
	var rows []string
	add := func(fs *pflag.FlagSet, from string) {
		fs.VisitAll(func(f *pflag.Flag) {
			if f.Hidden || f.Name == "help" {
				return
			}
			name, usage := pflag.UnquoteUsage(f)
			flagName := "--" + f.Name
			if f.Shorthand != "" {
				flagName = "-" + f.Shorthand + ", " + flagName
			}
			if name != "" && name != "bool" {
				flagName += " " + name
			}
			def := f.DefValue
			switch {
			case f.Name == "addr":
				def = client.DefaultAddr // without WAIL_ADDR
			case def == "" || def == "[]":
				def = "-"
			}
			if from != "" {
				usage += " (from `" + from + "`)"
			}
			rows = append(rows, fmt.Sprintf("| `%s` | `%s` | %s |", flagName, def, escapeCell(usage)))
		})
	}
	add(c.LocalFlags(), "")
	if c.HasParent() && c.Parent().HasParent() {
		add(c.InheritedFlags(), c.Parent().CommandPath())
	}
	if len(rows) > 0 {
		b.WriteString("| flag | default | |\n|---|---|---|\n")
		b.WriteString(strings.Join(rows, "\n"))
		b.WriteString("\n\n")
	}
}

func escapeCell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ")
}

// --- configuration -----------------------------------------------------------

// writeConfig writes the table of keys and returns those without a doc.
func writeConfig(t *testing.T, b *bytes.Buffer) (undocumented []string) {
	docs := fieldDocs(t, "../config")
	b.WriteString("## Configuration keys\n\n" +
		"YAML (`wail serve --config FILE`); every key has the default shown, and a file names\n" +
		"only what it changes. Unknown keys are errors (naming the key likely meant), and so is a\n" +
		"key without a value (remove the line to keep the default), and a value of the wrong type\n" +
		"(named by key and line; a fraction for a whole number too). Durations need a unit (`0s`, `500ms`,\n" +
		"`2m`). `tables[]` entries take `table_defaults` for what they leave out.\n\n" +
		"| key | default | |\n|---|---|---|\n")
	walkConfig(b, docs, reflect.TypeOf(config.Config{}), reflect.ValueOf(config.Default()), "Config", "", &undocumented)
	b.WriteString("\n")
	return undocumented
}

func walkConfig(b *bytes.Buffer, docs map[string]string, typ reflect.Type, val reflect.Value, docPrefix, keyPrefix string, undocumented *[]string) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		path := keyPrefix + key
		if _, refused := notDefaults[path]; refused {
			continue // the same struct as tables[], but not a setting there
		}
		doc := docs[docPrefix+"."+f.Name]
		if rest, ok := strings.CutPrefix(doc, f.Name+" "); ok { // "DataDir holds" -> "`data_dir` holds"
			doc = "`" + key + "` " + rest
		}
		ft, fv := f.Type, val.Field(i)
		switch {
		case ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Duration(0)):
			inner := docPrefix + "." + f.Name
			if ft.Name() != "" {
				inner = ft.Name()
			}
			walkConfig(b, docs, ft, fv, inner, path+".", undocumented)
			continue
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			fmt.Fprintf(b, "| `%s` | `[]` | %s |\n", path, escapeCell(doc))
			walkConfig(b, docs, ft.Elem(), reflect.Zero(ft.Elem()), ft.Elem().Name(), path+"[].", undocumented)
		default:
			fmt.Fprintf(b, "| `%s` | `%s` | %s |\n", path, formatDefault(fv), escapeCell(doc))
		}
		if doc == "" {
			*undocumented = append(*undocumented, path)
		}
	}
}

// notDefaults are the fields of tables[] that table_defaults refuses
// (config.Load fails on them: they name one table), with a value to try.
var notDefaults = map[string]string{
	"table_defaults.name":          "t",
	"table_defaults.key_proto":     "key.proto",
	"table_defaults.key_message":   "shop.Key",
	"table_defaults.value_proto":   "value.proto",
	"table_defaults.value_message": "shop.Order",
	"table_defaults.validate":      "false",
}

// TestReferenceNotDefaults: the keys the reference leaves out of
// table_defaults are refused there, so an operator who sets one learns
// it at load rather than by a setting that does nothing.
func TestReferenceNotDefaults(t *testing.T) {
	t.Parallel()
	for path, value := range notDefaults {
		key := strings.TrimPrefix(path, "table_defaults.")
		p := filepath.Join(t.TempDir(), "wail.yaml")
		if err := os.WriteFile(p, []byte("table_defaults:\n  "+key+": "+value+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := config.Load(p); err == nil {
			t.Errorf("%s: %s loads: the reference must list it (drop it from notDefaults)", path, value)
		}
	}
}

func formatDefault(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case time.Duration:
		s := x.String() // 24h0m0s -> 24h, 10m0s -> 10m
		if strings.HasSuffix(s, "m0s") {
			s = s[:len(s)-2]
		}
		if strings.HasSuffix(s, "h0m") {
			s = s[:len(s)-2]
		}
		return s
	case string:
		if x == "" {
			return `""`
		}
		return x
	case []string:
		return "[" + strings.Join(x, ", ") + "]"
	}
	switch {
	case v.Kind() == reflect.Pointer && v.IsNil():
		return "unset" // the doc says what unset means, not "<nil>"
	case v.Kind() == reflect.Map && v.Len() == 0:
		return "{}" // YAML's empty map, not "map[]"
	}
	return fmt.Sprint(v.Interface())
}

// fieldDocs returns the doc and line comments of every struct field in
// the package in dir (tests left out), by "Type.Field" (and
// "Type.Field.Inner" for inline structs).
func fieldDocs(t *testing.T, dir string) map[string]string {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, file := range files {
		if !strings.HasSuffix(file, "_test.go") {
			fileDocs(t, file, docs)
		}
	}
	return docs
}

// fileDocs adds the field docs of one file.
func fileDocs(t *testing.T, file string, docs map[string]string) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var visit func(prefix string, st *ast.StructType)
	visit = func(prefix string, st *ast.StructType) {
		for _, fld := range st.Fields.List {
			text := strings.TrimSpace(fld.Doc.Text() + " " + fld.Comment.Text())
			text = strings.Join(strings.Fields(text), " ")
			for _, n := range fld.Names {
				docs[prefix+"."+n.Name] = text
				if inner, ok := fld.Type.(*ast.StructType); ok {
					visit(prefix+"."+n.Name, inner)
				}
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if ts, ok := n.(*ast.TypeSpec); ok {
			if st, ok := ts.Type.(*ast.StructType); ok {
				visit(ts.Name.Name, st)
			}
		}
		return true
	})
}
