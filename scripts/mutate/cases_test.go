package main

import (
	"go/parser"
	"go/token"
	"testing"
)

func TestFindCase(t *testing.T) {
	src := "package x\n\nvar d = 5 * 2\nfunc f(n int) int {\n\tif n >= 2 {\n\t\treturn 0\n\t}\n\tswitch {\n\tcase n > 3, n-1 == 0:\n\t\treturn 1\n\t}\n\treturn 2\n}\n" +
		"func g(n int) int {\n\tif err := h(func() error { return nil }); err != nil && n > 1 {\n\t\treturn 1\n\t}\n\tif n < 0 {\n\t\treturn 2\n\t}\n\treturn 0\n}\n" +
		"func h(n int) int {\n\ti := search(n, func(i int) bool { return i > 2 }) - 1\n\treturn i\n}\n" +
		"func s(ch chan bool, n int) {\n\tselect {\n\tcase ch <- n > 2:\n\tdefault:\n\t}\n}\n"
	fset := token.NewFileSet()
	af, err := parser.ParseFile(fset, "x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typ          string
		line, col    int
		found        bool
		from, to     string
		swLine, swCo int
	}{
		{"CONDITIONALS_BOUNDARY", 9, 9, true, ">", ">=", 8, 2},
		{"CONDITIONALS_NEGATION", 9, 9, true, ">", "<=", 8, 2},
		{"ARITHMETIC_BASE", 9, 15, true, "-", "+", 8, 2},
		{"CONDITIONALS_NEGATION", 9, 18, true, "==", "!=", 8, 2},
		{"CONDITIONALS_BOUNDARY", 5, 7, false, "", "", 0, 0}, // an if: gremlins sees it
		{"INCREMENT_DECREMENT", 9, 9, false, "", "", 0, 0},   // no such mutation of >
		{"ARITHMETIC_BASE", 3, 11, true, "*", "/", 0, 0},     // a package-level declaration
		// an if's condition after a function literal in its init: in no
		// coverage block, gated on the if
		{"CONDITIONALS_NEGATION", 15, 48, true, "!=", "==", 15, 2},
		{"CONDITIONALS_BOUNDARY", 15, 60, true, ">", ">=", 15, 2},
		{"CONDITIONALS_BOUNDARY", 18, 7, false, "", "", 0, 0}, // a plain if: gremlins sees it
		// after a function literal in an assignment: gated on the statement
		{"ARITHMETIC_BASE", 24, 52, true, "-", "+", 24, 2},
		{"CONDITIONALS_BOUNDARY", 24, 45, false, "", "", 0, 0}, // inside the literal: gremlins sees it
		// a select's comm clause (a send's value): gated on the select
		{"CONDITIONALS_BOUNDARY", 29, 15, true, ">", ">=", 28, 2},
		{"CONDITIONALS_NEGATION", 29, 15, true, ">", "<=", 28, 2},
	} {
		m := &mutation{Type: tc.typ, Status: "NOT COVERED", Line: tc.line, Column: tc.col}
		c, ok := findCase(fset, af, []byte(src), m)
		if ok != tc.found || c.from != tc.from || c.to != tc.to || c.swLine != tc.swLine || c.swCol != tc.swCo || c.decl != (tc.line == 3) {
			t.Errorf("%s at %d:%d: %+v, %v", tc.typ, tc.line, tc.col, c, ok)
		}
	}
}

func TestReaches(t *testing.T) {
	p, err := parseProfile([]byte("mode: set\nexample.com/m/internal/x/x.go:3.20,4.12 1 1\nexample.com/m/internal/x/x.go:7.2,7.9 1 1\nexample.com/m/internal/x/x.go:9.2,9.9 1 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file      string
		line, col int
		want      bool
	}{
		{"x.go", 7, 2, true},
		{"x.go", 9, 2, false}, // not run
		{"x.go", 8, 2, false}, // in no block
		{"y.go", 7, 2, false},
		{"x.go", 4, 2, true},
	} {
		if got := p.reaches("internal/x", tc.file, tc.line, tc.col); got != tc.want {
			t.Errorf("%s:%d:%d: %v, want %v", tc.file, tc.line, tc.col, got, tc.want)
		}
	}
}

// TestInPackageDir: the case runner takes the package's own files, never
// a sub-package's (internal/proxy/proxytest under internal/proxy).
func TestInPackageDir(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"merge.go", true},
		{"internal/proxy/merge.go", true},
		{"/tmp/ci/internal/proxy/merge.go", true},
		{"proxytest/world.go", false},
		{"internal/proxy/proxytest/world.go", false},
		{"/tmp/ci/internal/proxy/proxytest/world.go", false},
	} {
		if got := inPackageDir("internal/proxy", tc.name); got != tc.want {
			t.Errorf("inPackageDir(internal/proxy, %s) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestPackageDir: a package given as "./internal/x" (as go commands take
// it) is the same package as "internal/x", so that the case runner finds
// its files in the coverage profile.
func TestPackageDir(t *testing.T) {
	p, err := parseProfile([]byte("mode: set\nexample.com/m/internal/x/x.go:7.2,7.9 1 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, arg := range []string{"internal/x", "./internal/x", "./internal/x/", "internal//x"} {
		dir := packageDir(arg)
		if dir != "internal/x" || !p.reaches(dir, "x.go", 7, 2) {
			t.Errorf("packageDir(%q) = %q, reaches %v", arg, dir, p.reaches(dir, "x.go", 7, 2))
		}
	}
}
