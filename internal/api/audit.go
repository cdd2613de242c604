package api

import (
	"context"
	"slices"
	"time"

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
		"tables", tables, "code", code, "took", time.Since(start).Round(time.Microsecond))
}

// auditHTTP logs an admin operation on an HTTP endpoint (the schema
// registry's changes): who, what, and the status it answered.
func (g *Guard) auditHTTP(id identity, method, path string, status int) {
	g.audit.Info("audit: admin operation", "principal", id.String(), "endpoint", method+" "+path, "status", status)
}
