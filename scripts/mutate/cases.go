package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Gremlins runs a mutant only when its position lies inside a block of the
// package's coverage profile, and three kinds of code lie in none:
//   - case expressions: Go's cover tool starts a case clause's block after
//     the clause's colon, so a mutant in `case len(key) > limit:` is
//     reported NOT COVERED and never run, whatever the tests do: every
//     decision written as a switch goes untested; so does a select's
//     comm clause (`case pending <- chunk{last: len(page) < limit}:`);
//   - package-level var and const declarations (`var stallLimit = 30 *
//     time.Second`), which run whenever the package is loaded;
//   - code after a function literal in the same statement (`if err :=
//     s.write(func() error { ... }); err != nil {`, `i := sort.Search(n,
//     func(i int) bool { ... }) - 1`): the cover tool ends a block where
//     the literal starts and begins the next one after the statement, so
//     the rest of the statement is in none.
//
// runCases runs those mutants itself: each NOT COVERED mutant in a case
// expression of a switch or a comm clause of a select, or after a function literal in a statement, that
// the tests reach, or in a package-level declaration, is applied to a copy of its file, which `go test -overlay`
// compiles in place of the original (the worktree is never written), and
// its status becomes what gremlins would have reported.

// caseMutant is a mutant in a case expression, after a function literal
// in a statement, or in a package-level declaration.
type caseMutant struct {
	m      *mutation
	file   string // path of the source file
	offset int    // of the operator in the file
	from   string // the operator
	to     string // what the mutant makes of it
	decl   bool   // in a package-level declaration: run whenever the package is
	where  string // what holds it, for the log
	swLine int    // the start of the statement that gates it (the switch of a
	swCol  int    // case expression), for coverage
}

// mutations are gremlins' replacements for the mutators it runs by default.
var mutations = map[string]map[string]string{
	"ARITHMETIC_BASE":       {"+": "-", "-": "+", "*": "/", "/": "*", "%": "*"},
	"CONDITIONALS_BOUNDARY": {">=": ">", ">": ">=", "<=": "<", "<": "<="},
	"CONDITIONALS_NEGATION": {"==": "!=", "!=": "==", ">=": "<", ">": "<=", "<=": ">", "<": ">="},
	"INCREMENT_DECREMENT":   {"++": "--", "--": "++"},
	"INVERT_NEGATIVES":      {"-": "+"},
}

// runCases runs the NOT COVERED mutants of res that sit in case
// expressions of switches, or after function literals in statements, that
// the package's tests reach, or in package-level declarations, and records their outcome in res. It returns how many it
// ran.
func runCases(pkg string, res *result, minTimeout time.Duration) (int, error) {
	var cands []caseMutant
	for i := range res.Files {
		f := &res.Files[i]
		if !inPackageDir(pkg, f.FileName) {
			continue // a sub-package's file (e.g. internal/proxy/proxytest: test scaffolding)
		}
		path := filepath.Join(pkg, filepath.Base(f.FileName))
		var src []byte
		var af *ast.File
		fset := token.NewFileSet()
		for j := range f.Mutations {
			m := &f.Mutations[j]
			if m.Status != "NOT COVERED" {
				continue
			}
			if af == nil {
				var err error
				if src, err = os.ReadFile(path); err != nil {
					return 0, err
				}
				if af, err = parser.ParseFile(fset, path, src, 0); err != nil {
					return 0, err
				}
			}
			if c, ok := findCase(fset, af, src, m); ok {
				c.file = path
				cands = append(cands, c)
			}
		}
	}
	if len(cands) == 0 {
		return 0, nil
	}
	prof, took, err := coverProfile(pkg)
	if err != nil {
		return 0, err
	}
	timeout := max(5*took, minTimeout)
	ran := 0
	for _, c := range cands {
		if !c.decl && !prof.reaches(pkg, filepath.Base(c.file), c.swLine, c.swCol) {
			continue
		}
		status, err := runMutant(pkg, c, timeout)
		if err != nil {
			return ran, err
		}
		c.m.Status = status
		ran++
		fmt.Fprintf(os.Stderr, "%12s %s at %s:%d:%d (%s, run by scripts/mutate)\n", status, c.m.Type, filepath.Base(c.file), c.m.Line, c.m.Column, c.where)
	}
	return ran, nil
}

// findCase returns m as a caseMutant when it sits in a case expression,
// after a function literal in a statement, or in a package-level
// declaration.
func findCase(fset *token.FileSet, af *ast.File, src []byte, m *mutation) (caseMutant, bool) {
	tf := fset.File(af.Pos())
	if m.Line < 1 || m.Line > tf.LineCount() {
		return caseMutant{}, false
	}
	offset := tf.Offset(tf.LineStart(m.Line)) + m.Column - 1
	pos := tf.Pos(offset)
	within := func(n ast.Node) bool { return n.Pos() <= pos && pos < n.End() }
	var found caseMutant
	ok := false
	for _, d := range af.Decls {
		if g, isGen := d.(*ast.GenDecl); isGen && (g.Tok == token.VAR || g.Tok == token.CONST) && within(g) {
			found, ok = caseMutant{m: m, offset: offset, decl: true, where: "package-level declaration"}, true
		}
	}
	gate := func(kw token.Pos, where string) {
		p := fset.Position(kw)
		found, ok = caseMutant{m: m, offset: offset, where: where, swLine: p.Line, swCol: p.Column}, true
	}
	var inner ast.Stmt // the innermost statement holding the mutant
	ast.Inspect(af, func(n ast.Node) bool {
		if ok || n == nil || !within(n) {
			return false
		}
		switch st := n.(type) {
		case *ast.SwitchStmt:
			for _, cl := range st.Body.List {
				for _, e := range cl.(*ast.CaseClause).List {
					if within(e) {
						gate(st.Switch, "case expression")
					}
				}
			}
		case *ast.SelectStmt:
			// A comm clause's send or receive (`case ch <- len(x) > n:`) is
			// evaluated when the select starts: gated on the select.
			for _, cl := range st.Body.List {
				if c := cl.(*ast.CommClause).Comm; c != nil && within(c) {
					gate(st.Select, "select case")
				}
			}
		case *ast.BlockStmt, *ast.CaseClause, *ast.CommClause:
		case ast.Stmt:
			inner = st
		}
		return !ok
	})
	// After a function literal in its own statement (an if's init, a call's
	// argument): the statement's start lies in the block before the
	// literal; any other mutant gremlins reports NOT COVERED lies in code
	// the tests never run.
	if !ok && inner != nil && funcLitBefore(inner, pos) {
		gate(inner.Pos(), "after a function literal")
	}
	if !ok {
		return caseMutant{}, false
	}
	repl := mutations[m.Type]
	for _, width := range []int{2, 1} {
		if offset+width > len(src) {
			continue
		}
		if to, hit := repl[string(src[offset:offset+width])]; hit {
			found.from, found.to = string(src[offset:offset+width]), to
			break
		}
	}
	if found.to == "" {
		return caseMutant{}, false
	}
	return found, true
}

// profile is a coverage profile: blocks by file name, with counts.
type profile map[string][]block

type block struct {
	startLine, startCol, endLine, endCol, count int
}

// reaches says whether a block the tests ran holds line:col of file
// (base name) of pkg.
func (p profile) reaches(pkg, file string, line, col int) bool {
	for name, blocks := range p {
		if !strings.HasSuffix(name, "/"+pkg+"/"+file) {
			continue
		}
		for _, b := range blocks {
			after := line > b.startLine || (line == b.startLine && col >= b.startCol)
			before := line < b.endLine || (line == b.endLine && col < b.endCol)
			if b.count > 0 && after && before {
				return true
			}
		}
	}
	return false
}

// coverProfile runs the package's tests once with coverage.
func coverProfile(pkg string) (profile, time.Duration, error) {
	f, err := os.CreateTemp("", "mutate-cover-*.out")
	if err != nil {
		return nil, 0, err
	}
	f.Close()
	defer os.Remove(f.Name())
	start := time.Now()
	if out, err := exec.Command("go", "test", "-count=1", "-coverprofile="+f.Name(), "./"+pkg).CombinedOutput(); err != nil {
		return nil, 0, fmt.Errorf("coverage of %s: %w\n%s", pkg, err, out)
	}
	took := time.Since(start)
	b, err := os.ReadFile(f.Name())
	if err != nil {
		return nil, 0, err
	}
	p, err := parseProfile(b)
	return p, took, err
}

// parseProfile reads "name:l.c,l.c statements count" lines.
func parseProfile(b []byte) (profile, error) {
	p := profile{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "mode:") || line == "" {
			continue
		}
		colon := strings.LastIndex(line, ":")
		fields := strings.Fields(line[colon+1:])
		if colon < 0 || len(fields) != 3 {
			return nil, fmt.Errorf("coverage profile line %q", line)
		}
		var bl block
		if _, err := fmt.Sscanf(fields[0], "%d.%d,%d.%d", &bl.startLine, &bl.startCol, &bl.endLine, &bl.endCol); err != nil {
			return nil, fmt.Errorf("coverage profile line %q: %w", line, err)
		}
		n, err := strconv.Atoi(fields[2])
		if err != nil {
			return nil, fmt.Errorf("coverage profile line %q: %w", line, err)
		}
		bl.count = n
		p[line[:colon]] = append(p[line[:colon]], bl)
	}
	return p, sc.Err()
}

// runMutant tests the package with the mutant in place of its file.
func runMutant(pkg string, c caseMutant, timeout time.Duration) (string, error) {
	src, err := os.ReadFile(c.file)
	if err != nil {
		return "", err
	}
	mutated := append(append(append([]byte{}, src[:c.offset]...), c.to...), src[c.offset+len(c.from):]...)
	dir, err := os.MkdirTemp("", "mutate-case-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	abs, err := filepath.Abs(c.file)
	if err != nil {
		return "", err
	}
	mfile := filepath.Join(dir, filepath.Base(c.file))
	if err := os.WriteFile(mfile, mutated, 0o644); err != nil {
		return "", err
	}
	ov, err := json.Marshal(map[string]map[string]string{"Replace": {abs: mfile}})
	if err != nil {
		return "", err
	}
	overlay := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlay, ov, 0o644); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-failfast", "-overlay="+overlay,
		"-timeout="+(timeout+2*time.Second).String(), "./"+pkg)
	// A hung mutant's test binary is go's child: end the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return "TIMED OUT", nil
	case err == nil:
		return "LIVED", nil
	case !errors.As(err, &exit):
		return "", err
	case bytes.Contains(out, []byte("[build failed]")) || bytes.Contains(out, []byte("[setup failed]")):
		return "NOT VIABLE", nil
	}
	return "KILLED", nil
}

// inPackageDir reports whether name (as gremlins names a file: relative
// to the package, to the module, or absolute) is in pkg's own directory,
// not in a sub-package under it.
func inPackageDir(pkg, name string) bool {
	dir := filepath.Dir(name)
	return dir == "." || dir == pkg || strings.HasSuffix(dir, string(filepath.Separator)+pkg)
}

// funcLitBefore says whether st holds a function literal that ends
// before pos.
func funcLitBefore(st ast.Stmt, pos token.Pos) bool {
	found := false
	ast.Inspect(st, func(n ast.Node) bool {
		if lit, isLit := n.(*ast.FuncLit); isLit && lit.End() <= pos {
			found = true
		}
		return !found
	})
	return found
}
