// Package auth is who may do what on wail's API: principals (a bearer
// token's name, a client certificate's identity, a verified JWT's
// principal claim: jwt.go, oidc.go), bearer tokens (made here, kept only
// as hashes, in a tokens file or in the store's catalog: catalog.go), and
// grants (a permission on the tables a pattern matches). The decisions are
// pure functions of these; package api applies them to each request.
package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Permission is what a grant allows.
type Permission string

// The permissions. Admin does not include the others: a grant names each.
const (
	Produce Permission = "produce" // Put, Delete, Write
	Read    Permission = "read"    // Get
	Consume Permission = "consume" // Subscribe, consumer groups (Consume, Ack, ListGroups, DescribeGroup)
	Admin   Permission = "admin"   // tables, dead letters, reconcile
	Metrics Permission = "metrics" // GET /metrics on the API port
	// Any is met by any permission on the table (DescribeTable,
	// ListTables), metrics excepted; it is not granted.
	Any Permission = "any"
	// All, in a grant, is every permission.
	All Permission = "*"
)

// Permissions are the permissions a grant may name (besides "*").
var Permissions = []Permission{Produce, Read, Consume, Admin, Metrics}

// ErrBadGrant is a grant that does not parse.
var ErrBadGrant = errors.New("bad grant")

// MaxName bounds a principal's or table pattern's length.
const MaxName = 256

// Grant allows Permission on the tables Tables matches.
type Grant struct {
	Permission Permission
	// Tables is a table name pattern: '*' matches any run of characters.
	Tables string
}

func (g Grant) String() string { return string(g.Permission) + ":" + g.Tables }

// ParseGrant parses "PERMISSION:TABLES" (tables "*" when left out), for
// example "produce:orders", "consume:orders_*", "admin:*", "*:*",
// "metrics".
func ParseGrant(s string) (Grant, error) {
	perm, tables, found := strings.Cut(strings.TrimSpace(s), ":")
	if !found {
		tables = "*"
	}
	g := Grant{Permission: Permission(perm), Tables: tables}
	if g.Permission != All && !slices.Contains(Permissions, g.Permission) {
		return g, fmt.Errorf("%w %q: permission %q is none of produce, read, consume, admin, metrics or *", ErrBadGrant, s, perm)
	}
	if tables == "" || len(tables) > MaxName || strings.ContainsFunc(tables, badRune) {
		return g, fmt.Errorf("%w %q: the tables pattern must be 1..%d printable characters without spaces ('*' matches any run)", ErrBadGrant, s, MaxName)
	}
	return g, nil
}

// ParseGrants parses each of ss.
func ParseGrants(ss []string) ([]Grant, error) {
	out := make([]Grant, 0, len(ss))
	for _, s := range ss {
		g, err := ParseGrant(s)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

func badRune(r rune) bool { return r <= ' ' || r == 0x7f || r == ':' }

// Allows reports whether g allows perm on table. Any is met by a
// permission on tables: metrics is none.
func (g Grant) Allows(perm Permission, table string) bool {
	switch {
	case perm == Any && g.Permission == Metrics:
		return false
	case g.Permission != All && g.Permission != perm && perm != Any:
		return false
	}
	return Match(g.Tables, table)
}

// Match reports whether name matches pattern, where '*' matches any run of
// characters (none included) and every other character itself.
func Match(pattern, name string) bool {
	// Iterative glob with one backtrack point: linear in practice, never
	// exponential.
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Allowed reports whether any of grants allows perm on every table of
// tables; no table at all needs a grant on every table ("*" pattern) for
// perm, except for Any, which any grant but metrics meets.
func Allowed(grants []Grant, perm Permission, tables []string) bool {
	if len(tables) == 0 {
		for _, g := range grants {
			if (perm == Any && g.Permission != Metrics) || (g.Allows(perm, "") && g.Tables == "*") {
				return true
			}
		}
		return false
	}
	for _, t := range tables {
		if !slices.ContainsFunc(grants, func(g Grant) bool { return g.Allows(perm, t) }) {
			return false
		}
	}
	return true
}
