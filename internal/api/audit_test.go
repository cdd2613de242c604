package api

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/auth"
)

// TestAuditTokenEdits: a tokens document edited by hand (the file, or the
// catalog's entry) is audited as `wail token`'s changes are, and so are
// the changes `wail token` cannot make: a token's grants changed (widened,
// say), a revocation undone, its secret replaced.
func TestAuditTokenEdits(t *testing.T) {
	t.Parallel()
	now := time.Now()
	revoked := now.Add(-time.Hour)
	before := &auth.TokenFile{Tokens: []auth.TokenEntry{
		{ID: "0000000000000001", Name: "writer", Grants: []string{"produce:t"}},
		{ID: "0000000000000002", Name: "old", Grants: []string{"read:t"}, Revoked: &revoked},
		{ID: "0000000000000003", Name: "same", Grants: []string{"read:t"}},
	}}
	for _, tc := range []struct {
		name  string
		edit  func(*auth.TokenEntry)
		token int
		want  string
	}{
		{"grants widened", func(e *auth.TokenEntry) { e.Grants = []string{"*:*"} }, 0,
			`msg="audit: token grants changed" principal=token:writer token=0000000000000001 grants=[*:*] grants_before=[produce:t]`},
		{"revocation undone", func(e *auth.TokenEntry) { e.Revoked = nil }, 1,
			`msg="audit: token revocation undone" principal=token:old token=0000000000000002`},
		// Another secret under the token's id: whoever wrote it holds a
		// token with its grants, and nothing said so.
		{"secret replaced", func(e *auth.TokenEntry) { e.SHA256 = strings.Repeat("ab", 32) }, 0,
			`msg="audit: token secret replaced" principal=token:writer token=0000000000000001`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs strings.Builder
			g := &Guard{audit: slog.New(slog.NewTextHandler(&logs, nil))}
			after := &auth.TokenFile{Tokens: append([]auth.TokenEntry(nil), before.Tokens...)}
			tc.edit(&after.Tokens[tc.token])
			g.auditTokens("tokens.json", before, after)
			if !strings.Contains(logs.String(), tc.want) {
				t.Errorf("no audit line %q in:\n%s", tc.want, logs.String())
			}
			if strings.Contains(logs.String(), "token=0000000000000003") {
				t.Errorf("an unchanged token was audited:\n%s", logs.String())
			}
		})
	}
}
