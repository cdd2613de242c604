package api

import (
	"context"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/wail-cdc/wail/internal/auth"
)

// auditTokens logs the token changes between two readings of the tokens
// file (none at the first): made with `wail token` on the server host,
// they take effect here.
func (g *Guard) auditTokens(path string, before, after *auth.TokenFile) {
	if before == nil {
		return
	}
	was := map[string]auth.TokenEntry{}
	for _, e := range before.Tokens {
		was[e.ID] = e
	}
	for _, e := range after.Tokens {
		old, ok := was[e.ID]
		delete(was, e.ID)
		switch {
		case !ok:
			g.audit.Info("audit: token created", "principal", e.Principal().String(), "token", e.ID, "grants", e.Grants, "tokens_file", path)
			continue
		case old.Revoked == nil && e.Revoked != nil:
			g.audit.Info("audit: token revoked", "principal", e.Principal().String(), "token", e.ID, "tokens_file", path)
		case old.Revoked != nil && e.Revoked == nil: // a hand edit: `wail token` never does it
			g.audit.Info("audit: token revocation undone", "principal", e.Principal().String(), "token", e.ID, "tokens_file", path)
		}
		if old.SHA256 != e.SHA256 { // a hand edit: another secret under the token's id, with its grants
			g.audit.Info("audit: token secret replaced", "principal", e.Principal().String(), "token", e.ID, "tokens_file", path)
		}
		// Hand edits too: a token widened, or renamed to a principal with
		// more configured grants.
		if !slices.Equal(old.Grants, e.Grants) || old.Name != e.Name {
			attrs := []any{"principal", e.Principal().String(), "token", e.ID, "grants", e.Grants, "grants_before", old.Grants}
			if old.Name != e.Name {
				attrs = append(attrs, "principal_before", old.Principal().String())
			}
			g.audit.Info("audit: token grants changed", append(attrs, "tokens_file", path)...)
		}
	}
	for _, e := range was {
		g.audit.Info("audit: token removed", "principal", e.Principal().String(), "token", e.ID, "tokens_file", path)
	}
}

// auditRPC logs an admin operation: who, what, on which tables, and how
// it ended.
func (g *Guard) auditRPC(ctx context.Context, procedure string, req any, start time.Time, err error) {
	if rules[procedure] != auth.Admin {
		return
	}
	var tables []string
	if m, ok := req.(proto.Message); ok {
		tables = tablesOf(m)
	}
	code := "ok"
	if err != nil {
		code = connect.CodeOf(err).String()
	}
	g.audit.Info("audit: admin operation", "principal", identityOf(ctx).String(), "procedure", procedure,
		"tables", auditTables(tables), "code", code, "took", time.Since(start).Round(time.Microsecond))
}

// auditHTTP logs an admin operation on an HTTP endpoint (the schema
// registry's changes): who, what, and the status it answered.
func (g *Guard) auditHTTP(id identity, method, path string, status int) {
	g.audit.Info("audit: admin operation", "principal", id.String(), "endpoint", auditField(method+" "+path), "status", status)
}

// Bounds of what an audit line quotes of a request. A caller refused for
// want of a grant is audited (it asked for an admin operation) and
// chooses the path (up to api.max_header_bytes) and the table names (up
// to the request's size): each is cut, with a marker saying how long it
// was, so the line stays short and still says who asked for what. The
// principal is bounded already (auth.MaxName).
const (
	auditFieldBytes = 256 // of a path or a table name
	auditTablesMax  = 8   // table names quoted; then how many more
)

// auditField is s, or its first auditFieldBytes (whole runes) and
// "…(N bytes)" when it is longer.
func auditField(s string) string {
	if len(s) <= auditFieldBytes {
		return s
	}
	cut := auditFieldBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…(%d bytes)", s[:cut], len(s))
}

// auditTables is tables as an audit line quotes them: each name cut
// (auditField), at most auditTablesMax of them, then "…(N more)".
func auditTables(tables []string) []string {
	n := min(len(tables), auditTablesMax)
	out := make([]string, 0, n+1)
	for _, t := range tables[:n] {
		out = append(out, auditField(t))
	}
	if more := len(tables) - n; more > 0 {
		out = append(out, fmt.Sprintf("…(%d more)", more))
	}
	return out
}
