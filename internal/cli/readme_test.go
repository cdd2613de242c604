package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/logbuf"
)

// block is a fenced code block of a markdown file.
type block struct {
	file, lang string
	// tag is the fence's info string after the language: "walkthrough"
	// marks the blocks TestReadmeWalkthrough runs (on Kafka), not
	// TestReadmeRuns.
	tag  string
	line int // of the opening fence
	text string
}

func codeBlocks(t *testing.T, files ...string) []block {
	t.Helper()
	var out []block
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cur *block
		for i, line := range strings.Split(string(b), "\n") {
			switch {
			case cur == nil && strings.HasPrefix(line, "```"):
				lang, tag, _ := strings.Cut(strings.TrimPrefix(line, "```"), " ")
				cur = &block{file: filepath.Base(f), lang: lang, tag: tag, line: i + 1}
			case cur != nil && strings.HasPrefix(line, "```"):
				out = append(out, *cur)
				cur = nil
			case cur != nil:
				cur.text += line + "\n"
			}
		}
	}
	return out
}

func docFiles(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"../../README.md"}, docs...)
}

// TestDocsYAML: every YAML snippet of README.md and docs/*.md loads
// through config.Load (the README's did not: `event_retention: 0`),
// except Prometheus's (```yaml prometheus, checked by internal/server's
// TestAlertRules).
func TestDocsYAML(t *testing.T) {
	t.Parallel()
	n := 0
	for _, b := range codeBlocks(t, docFiles(t)...) {
		if b.lang != "yaml" || b.tag == "prometheus" {
			continue
		}
		n++
		p := filepath.Join(t.TempDir(), "wail.yaml")
		if err := os.WriteFile(p, []byte(b.text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := config.Load(p); err != nil {
			t.Errorf("%s:%d: the YAML does not load: %v", b.file, b.line, err)
		}
	}
	if n == 0 {
		t.Fatal("no YAML snippet found: is the README where it was?")
	}
}

// shellLines splits a shell block into command lines: continuations
// joined, comments and blank lines dropped.
func shellLines(text string) []string {
	var out []string
	cur := ""
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(stripComment(l))
		if c, ok := strings.CutSuffix(l, "\\"); ok {
			cur += c + " "
			continue
		}
		cur += strings.TrimSuffix(l, " &") // run in the background
		if strings.TrimSpace(cur) != "" {
			out = append(out, strings.TrimSpace(cur))
		}
		cur = ""
	}
	return out
}

// stripComment cuts a # comment that starts a word outside quotes.
func stripComment(l string) string {
	var quote rune
	for i, r := range l {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t'):
			return l[:i]
		}
	}
	return l
}

// words splits a command line as a shell would (quotes, no expansion).
func words(l string) []string {
	var out []string
	var cur strings.Builder
	var quote rune
	in := false
	for _, r := range l {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// placeholder: a line that names hosts, files (/etc/wail/) or values to fill in; it is only
// checked against the commands, not run.
var placeholder = regexp.MustCompile(`\.\.\.|@db:|replica:|kafka-\d|secret@|/etc/wail/`)

// checkArgs parses a wail command line against the commands without
// running it: the command and its flags exist, the arguments fit.
func checkArgs(args []string) error {
	err := parseArgs(args)
	if err != nil && len(args) > 0 && args[len(args)-1] == "..." {
		return parseArgs(args[:len(args)-1]) // "and more flags"
	}
	return err
}

func parseArgs(args []string) error {
	root := newRootCmd(&globals{env: env{getenv: func(string) string { return "" }}})
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	cmd, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return err
	}
	if cmd.Args != nil {
		return cmd.Args(cmd, cmd.Flags().Args())
	}
	return nil
}

// wailArgs returns the arguments of a line that runs wail.
func wailArgs(line string) ([]string, bool) {
	w := words(line)
	switch {
	case len(w) >= 3 && w[0] == "go" && w[1] == "run" && w[2] == "./cmd/wail":
		return w[3:], true
	case len(w) >= 1 && (w[0] == "./wail" || w[0] == "wail"):
		return w[1:], true
	}
	return nil, false
}

// TestDocsCommandLines: every `wail` line of README.md and docs/*.md names
// a command and flags that exist, with arguments that fit.
func TestDocsCommandLines(t *testing.T) {
	t.Parallel()
	n := 0
	for _, b := range codeBlocks(t, docFiles(t)...) {
		if b.lang != "sh" {
			continue
		}
		for _, l := range shellLines(b.text) {
			if args, ok := wailArgs(l); ok {
				n++
				if err := checkArgs(args); err != nil {
					t.Errorf("%s:%d: %q: %v", b.file, b.line, l, err)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no wail command line found")
	}
}

// TestReadmeRuns runs the README's command lines in order: the demo, the
// servers (with --data-dir and --listen pointed at the test's, and the
// README's YAML as wail.yaml), every client command and curl example
// against the server the README starts, and checks that every make target
// it names exists. Lines that name hosts to fill in are checked against
// the commands only (TestDocsCommandLines).
func TestReadmeRuns(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs the demo and a server")
	}
	dir := t.TempDir()
	targets := makeTargets(t)
	blocks := codeBlocks(t, "../../README.md")
	for _, b := range blocks {
		if b.lang == "yaml" {
			if err := os.WriteFile(filepath.Join(dir, "wail.yaml"), []byte(b.text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "order.json"), []byte(`{"status":"placed"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	// The schema of the README's `wail schema` lines: a compatible change of
	// the one its curl lines register.
	if err := os.WriteFile(filepath.Join(dir, "order.proto"),
		[]byte(`syntax = "proto3"; package shop; message Order { string id = 1; int64 amount = 2; string note = 3; }`), 0o644); err != nil {
		t.Fatal(err)
	}
	var addr string // the server the README's last `wail serve` line started
	stop := func() {}
	defer func() { stop() }()
	serves := 0 // the first one's data dir is the README's ./wail-data
	ran := 0
	for _, b := range blocks {
		if b.lang != "sh" || b.tag == walkthrough {
			continue
		}
		for _, l := range shellLines(b.text) {
			where := b.file + ":" + strconv.Itoa(b.line) + ": " + l
			args, isWail := wailArgs(l)
			w := words(l)
			switch {
			case w[0] == "make":
				target := "all"
				if len(w) > 1 {
					target = w[1]
				}
				if !targets[target] {
					t.Errorf("%s: the Makefile has no target %q", where, target)
				}
			case w[0] == "go" && len(w) > 1 && w[1] == "build":
				// builds the binary; the lines below run the commands in-process
			case w[0] == "curl":
				if addr == "" {
					t.Fatalf("%s: no server yet", where)
				}
				runCurl(t, where, l, addr)
				ran++
			case !isWail:
				t.Errorf("%s: a README line the test does not know how to run: teach it, or say why not", where)
			case placeholder.MatchString(l):
				// checked by TestDocsCommandLines
			case args[0] == "demo":
				runDemoLine(t, where, args)
				ran++
			case args[0] == "serve":
				stop() // the README's previous server
				stop = func() {}
				serves++
				addr, stop = runServeLine(t, where, withFiles(args, dir), filepath.Join(dir, "data-"+strconv.Itoa(serves)))
				ran++
			default:
				if addr == "" {
					t.Fatalf("%s: no server yet", where)
				}
				if args[0] == "doctor" { // the running server's data dir, not ./wail-data here
					args = append(args, "--data-dir", filepath.Join(dir, "data-"+strconv.Itoa(serves)))
				}
				runClientLine(t, where, withFiles(args, dir), addr)
				ran++
			}
		}
	}
	if ran < 10 {
		t.Fatalf("ran only %d README lines", ran)
	}
}

// withFiles points file arguments of the README (wail.yaml, order.proto, @order.json,
// ./wail-data: the data dir of the README's first, stopped, server) at the
// test's directory.
func withFiles(args []string, dir string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		switch {
		case a == "wail.yaml":
			a = filepath.Join(dir, a)
		case a == "./wail-data":
			a = filepath.Join(dir, "data-1")
		case strings.HasSuffix(a, ".proto"):
			a = filepath.Join(dir, a)
		case strings.HasPrefix(a, "@") && strings.HasSuffix(a, ".json"):
			a = "@" + filepath.Join(dir, a[1:])
		}
		out[i] = a
	}
	return out
}

// runServeLine starts a README serve line in-process on dataDir and a
// free port, and returns its URL and how to stop it (it must exit 0).
func runServeLine(t *testing.T, where string, args []string, dataDir string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	args = append(args, "--data-dir", dataDir, "--listen", "127.0.0.1:0")
	done := make(chan int, 1)
	var out, errOut logbuf.Buffer
	go func() {
		done <- run(ctx, env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}, args)
	}()
	listening := regexp.MustCompile(`wail listening on (http://\S+)`)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			return m[1], func() {
				cancel()
				if code := <-done; code != 0 {
					t.Errorf("%s: exit %d on shutdown: %s", where, code, errOut.String())
				}
			}
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("%s: exited %d before listening: %s", where, code, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("%s: not listening after 30s", where)
		}
	}
}

// runDemoLine runs the demo for a few seconds and stops it as Ctrl-C
// would: it must print its summary and exit 0.
func runDemoLine(t *testing.T, where string, args []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	code, out, errOut := runCLI(ctx, "", "", args...)
	if code != 0 || !strings.Contains(out, "acknowledged") {
		t.Errorf("%s: exit %d\n%s%s", where, code, out, errOut)
	}
}

// exampleLetters: README lines about the dead letters of an example; on
// the test's server there are none, and not_found from the server proves
// the command and its RPC are there.
var exampleLetters = regexp.MustCompile(`^(sink )?dlq (show|redrive|drop) orders (billing )?[0-9]`)

// runClientLine runs a client command against addr; tail and consume
// run a second.
func runClientLine(t *testing.T, where string, args []string, addr string) {
	t.Helper()
	ctx := context.Background()
	if args[0] == "tail" || args[0] == "consume" {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Second)
		defer cancel()
		if group := flagValue(args, "--group"); args[0] == "consume" && group != "" {
			// A member leaves when its line ends: on a loaded machine one
			// second may end it before it joined, and the README's next
			// line describes the group. End it once the group shows.
			ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			go func() {
				defer cancel()
				for ctx.Err() == nil {
					if code, _, _ := runCLI(ctx, addr, "", "group", "describe", args[1], group); code == 0 {
						time.Sleep(500 * time.Millisecond)
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
		}
	}
	code, out, errOut := runCLI(ctx, addr, "", args...)
	switch {
	case exampleLetters.MatchString(strings.Join(args, " ")):
		if code != 1 || !strings.Contains(errOut, "error: not_found: no dead letter at that offset") {
			t.Errorf("%s: exit %d, want not_found\n%s%s", where, code, out, errOut)
		}
	case code != 0:
		t.Errorf("%s: exit %d\n%s%s", where, code, out, errOut)
	}
}

// flagValue returns the value of flag in args ("--flag value" or
// "--flag=value"), or "".
func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

// runCurl runs a curl example through bash against addr (for
// localhost:7070); an answer with an error code fails.
func runCurl(t *testing.T, where, line, addr string) {
	t.Helper()
	for _, tool := range []string{"bash", "curl", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s: %s is missing", where, tool)
			}
			t.Skipf("%s is missing: the curl examples are not run", tool)
		}
	}
	line = strings.ReplaceAll(line, "localhost:7070", strings.TrimPrefix(addr, "http://"))
	out, err := exec.Command("bash", "-c", line).CombinedOutput()
	if err != nil || strings.Contains(string(out), `"code"`) || len(strings.TrimSpace(string(out))) == 0 {
		t.Errorf("%s: %v\n%s", where, err, out)
	}
}

// makeTargets returns the targets the Makefile defines.
func makeTargets(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	targets := map[string]bool{}
	rule := regexp.MustCompile(`^([a-zA-Z0-9_-]+):`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := rule.FindStringSubmatch(sc.Text()); m != nil && !strings.Contains(sc.Text(), ":=") {
			targets[m[1]] = true
		}
	}
	return targets
}

// TestDocsPython: every Python snippet of the docs is run by a test against
// a real broker: the README walk-through's whole script
// (TestReadmeWalkthrough), or an excerpt of internal/server/testdata's
// consume_typed.py (run by TestConfluentPythonConsumer): each of its lines,
// comments aside, appears in the script in the same order.
func TestDocsPython(t *testing.T) {
	t.Parallel()
	script, err := os.ReadFile("../../internal/server/testdata/consume_typed.py")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(script), "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	n := 0
	for _, b := range codeBlocks(t, docFiles(t)...) {
		if b.lang != "python" {
			continue
		}
		n++
		if b.tag == walkthrough && b.file == "README.md" {
			continue
		}
		at := 0
		for _, l := range strings.Split(b.text, "\n") {
			l, _, _ = strings.Cut(l, "  #")
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			found := false
			for at < len(lines) {
				at++
				if lines[at-1] == l {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("%s:%d: %q is not a line of consume_typed.py (after the snippet's previous line): keep the snippet an excerpt of the tested script", b.file, b.line, l)
				break
			}
		}
	}
	if n == 0 {
		t.Fatal("no python snippet found: the README's consumer is gone or its fence changed")
	}
}

// readmeGoPrelude is what a README Go snippet may use without saying so.
const readmeGoPrelude = `package readmego

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
)

var (
	_ context.Context
	_ = errors.As
	_ = io.ReadAll
	_ = log.Print
	_ http.Handler
	_ time.Duration
	_ connect.Code
	_ wailv1.PutRequest
	_ wailv1connect.ProducerServiceClient
	_ = client.Dial
)
`

// TestReadmeGo compiles the README's Go snippets against the packages
// they use, so that a renamed type, field or function fails here rather
// than in a reader's editor. Each snippet's fence names, after "go", the
// signature of the function it is the body of, which declares its free
// variables ("```go func(ctx context.Context, producer
// wailv1connect.ProducerServiceClient, k, v []byte)"). The snippets are
// built as a package that exists only in an overlay; errors name README
// lines.
func TestReadmeGo(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs go build")
	}
	var src strings.Builder
	src.WriteString(readmeGoPrelude)
	// at maps a line of the built file to its README line (0: the prelude's).
	at := make([]int, strings.Count(readmeGoPrelude, "\n")+1)
	n := 0
	for _, b := range codeBlocks(t, "../../README.md") {
		if b.lang != "go" {
			continue
		}
		if !strings.HasPrefix(b.tag, "func(") {
			t.Errorf("%s:%d: a Go snippet's fence must name its signature (```go func(ctx context.Context, ...)), got %q", b.file, b.line, b.tag)
			continue
		}
		n++
		fmt.Fprintf(&src, "\nfunc snippet%d%s {\n%s}\n", n, strings.TrimPrefix(b.tag, "func"), b.text)
		at = append(at, 0, b.line) // the blank line; the signature: the fence
		for i := range strings.Count(b.text, "\n") {
			at = append(at, b.line+1+i)
		}
		at = append(at, 0) // the closing brace
	}
	if n == 0 {
		t.Fatal("no Go snippet found in the README")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "readme.go")
	if err := os.WriteFile(file, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	pkg, err := filepath.Abs("readmego") // a directory that does not exist: the overlay makes it
	if err != nil {
		t.Fatal(err)
	}
	overlay, err := json.Marshal(map[string]any{"Replace": map[string]string{filepath.Join(pkg, "readme.go"): file}})
	if err != nil {
		t.Fatal(err)
	}
	ov := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ov, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-overlay", ov, "./readmego")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the README's Go snippets do not compile:\n%s", readmeLines.ReplaceAllStringFunc(string(out), func(m string) string {
			l, _ := strconv.Atoi(readmeLines.FindStringSubmatch(m)[1])
			if l < len(at) && at[l] > 0 {
				return "README.md:" + strconv.Itoa(at[l]) + ":"
			}
			return m
		}))
	}
}

// readmeLines finds the positions go build reports in the built file.
var readmeLines = regexp.MustCompile(`\S*readme\.go:(\d+):(\d+:)?`)

// TestReadmeConfigDefaults: the README's configuration block (the YAML
// under "## Configuration") shows every setting at its default, so an
// operator reading it learns the defaults the process runs with; only
// its example tables differ, and the JWT settings, which it shows at the
// values their zero stands for.
func TestReadmeConfigDefaults(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n## Configuration\n")
	if !ok {
		t.Fatal(`the README has no "## Configuration" section`)
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	text, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal(`no YAML block under "## Configuration"`)
	}
	p := filepath.Join(t.TempDir(), "wail.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Default()
	got.Tables = want.Tables
	gj, wj := got.Security.Auth.JWT, want.Security.Auth.JWT
	g1, g2, g3, g4 := gj.Durations()
	w1, w2, w3, w4 := wj.Durations()
	if g1 != w1 || g2 != w2 || g3 != w3 || g4 != w4 {
		t.Errorf("README's security.auth.jwt leeway, refresh, refetch_interval, fetch_timeout are %v %v %v %v; the defaults %v %v %v %v", g1, g2, g3, g4, w1, w2, w3, w4)
	}
	got.Security.Auth.JWT = wj
	for _, d := range configDiffs(reflect.ValueOf(got), reflect.ValueOf(want), "") {
		t.Errorf("README's configuration block: %s", d)
	}
	// Every key of the reference is there, as a setting or in a comment
	// (the Kafka and SQL settings, the external registry's).
	shown := yamlKeys(text)
	ref, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatal(err)
	}
	_, keys, _ := strings.Cut(string(ref), "\n## Configuration keys\n")
	for _, l := range strings.Split(keys, "\n") {
		key, ok := strings.CutPrefix(l, "| `")
		key, _, _ = strings.Cut(key, "`")
		if ok && !strings.Contains(key, "[].") && !shown[key] {
			t.Errorf("README's configuration block lacks %s (docs/reference.md has it)", key)
		}
	}
}

// yamlKeys are the key paths of a YAML text, commented-out keys included
// (a key's parent is the nearest key left of it on an earlier line), and
// the keys of inline maps.
func yamlKeys(text string) map[string]bool {
	line := regexp.MustCompile(`^([\s#-]*)([a-z_]+):`)
	inline := regexp.MustCompile(`([a-z_]+):`)
	type level struct {
		col int
		key string
	}
	var stack []level
	out := map[string]bool{}
	for _, l := range strings.Split(text, "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		col := len(strings.Replace(m[1], "# ", "", 1)) // a commented key sits where it would uncommented
		for len(stack) > 0 && stack[len(stack)-1].col >= col {
			stack = stack[:len(stack)-1]
		}
		path := m[2]
		if len(stack) > 0 {
			path = stack[len(stack)-1].key + "." + m[2]
		}
		out[path] = true
		stack = append(stack, level{col, path})
		if _, rest, ok := strings.Cut(l[len(m[0]):], "{"); ok {
			rest, _, _ = strings.Cut(rest, "}")
			for _, k := range inline.FindAllStringSubmatch(rest, -1) {
				out[path+"."+k[1]] = true
			}
		}
	}
	return out
}

// configDiffs names the fields of two configurations that differ.
func configDiffs(a, b reflect.Value, path string) []string {
	if a.Kind() == reflect.Struct && a.Type() != reflect.TypeOf(time.Duration(0)) {
		var out []string
		for i := range a.NumField() {
			out = append(out, configDiffs(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name)...)
		}
		return out
	}
	if (a.Kind() == reflect.Slice || a.Kind() == reflect.Map) && a.Len() == 0 && b.Len() == 0 {
		return nil // YAML's [] or {} is the default's nil
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		return []string{fmt.Sprintf("%s is %v, the default is %v", strings.TrimPrefix(path, "."), a.Interface(), b.Interface())}
	}
	return nil
}
