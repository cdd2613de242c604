package auth

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/vfs"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"*", "", true}, {"*", "orders", true}, {"orders", "orders", true}, {"orders", "orders2", false},
		{"orders_*", "orders_eu", true}, {"orders_*", "orders", false}, {"*_eu", "orders_eu", true},
		{"o*s*u", "orders_eu", true}, {"o*s*u", "orders_eux", false}, {"a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac", false},
		{"**", "x", true}, {"", "", true}, {"", "x", false},
		// Only '*' is a wildcard: '?' and '.' match themselves alone.
		{"o?ders", "orders", false}, {"o.ders", "orders", false}, {"o?ders", "o?ders", true},
	} {
		if got := Match(tc.pattern, tc.name); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestParseGrant(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Grant{
		"produce:orders": {Produce, "orders"}, "admin": {Admin, "*"}, "*:*": {All, "*"}, "consume:o_*": {Consume, "o_*"},
		"metrics": {Metrics, "*"}, " read:t ": {Read, "t"},
	} {
		if got, err := ParseGrant(in); err != nil || got != want {
			t.Errorf("ParseGrant(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "write:t", "produce:", "produce:a b", "produce:a:b", "any:t", "PRODUCE:t", "produce:" + strings.Repeat("x", MaxName+1)} {
		if _, err := ParseGrant(in); !errors.Is(err, ErrBadGrant) {
			t.Errorf("ParseGrant(%q): %v, want ErrBadGrant", in, err)
		}
	}
}

func TestAllowed(t *testing.T) {
	t.Parallel()
	gs := []Grant{{Produce, "orders"}, {Read, "o*"}, {All, "audit"}}
	for _, tc := range []struct {
		perm   Permission
		tables []string
		want   bool
	}{
		{Produce, []string{"orders"}, true},
		{Produce, []string{"orders", "other"}, false}, // every table needs the grant
		{Read, []string{"orders", "other"}, true},
		{Consume, []string{"orders"}, false},
		{Admin, []string{"audit"}, true},
		{Any, []string{"orders"}, true},
		{Any, []string{"x"}, false},
		{Any, nil, true},      // some grant
		{Produce, nil, false}, // no table: a grant on every table
		{Admin, []string{"aud"}, false},
	} {
		if got := Allowed(gs, tc.perm, tc.tables); got != tc.want {
			t.Errorf("Allowed(%s, %q) = %v, want %v", tc.perm, tc.tables, got, tc.want)
		}
	}
	if !Allowed([]Grant{{Produce, "*"}}, Produce, nil) || Allowed(nil, Any, nil) {
		t.Error("no-table rules are wrong")
	}
}

func TestParsePrincipal(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Principal{
		"token:alice": {KindToken, "alice"}, "cert:orders svc": {KindCert, "orders svc"}, "cert:spiffe://x/y": {KindCert, "spiffe://x/y"},
	} {
		if got, err := ParsePrincipal(in); err != nil || got != want || got.String() != in {
			t.Errorf("ParsePrincipal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParsePrincipal("cert:" + strings.Repeat("x", MaxName)); err != nil {
		t.Errorf("a name of MaxName characters: %v", err)
	}
	for _, in := range []string{"", "alice", "user:alice", "token:", "token:a b", "cert: x", "cert:x\n", "token:" + strings.Repeat("a", 65),
		"cert:" + strings.Repeat("x", MaxName+1)} {
		if _, err := ParsePrincipal(in); !errors.Is(err, ErrBadPrincipal) {
			t.Errorf("ParsePrincipal(%q): %v, want ErrBadPrincipal", in, err)
		}
	}
}

func TestCertIdentity(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("spiffe://prod/orders")
	for _, tc := range []struct {
		c    *x509.Certificate
		want string
		ok   bool
	}{
		{&x509.Certificate{Subject: pkix.Name{CommonName: "svc"}, DNSNames: []string{"d"}}, "cert:svc", true},
		{&x509.Certificate{URIs: []*url.URL{u}, DNSNames: []string{"d"}}, "cert:spiffe://prod/orders", true},
		{&x509.Certificate{DNSNames: []string{"d.example"}}, "cert:d.example", true},
		{&x509.Certificate{}, "", false},
		{&x509.Certificate{Subject: pkix.Name{CommonName: "bad\x00"}}, "", false},
	} {
		p, ok := CertIdentity(tc.c)
		if ok != tc.ok || (ok && p.String() != tc.want) {
			t.Errorf("CertIdentity = %v, %v; want %q, %v", p, ok, tc.want, tc.ok)
		}
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens.json")
	tf, err := ReadTokenFile(path) // missing: empty
	if err != nil || len(tf.Tokens) != 0 {
		t.Fatalf("missing file: %v %v", tf, err)
	}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tok, e, err := tf.Create("alice", []Grant{{Produce, "orders"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != TokenLen {
		t.Fatalf("token %q has length %d, want %d", tok, len(tok), TokenLen)
	}
	tok2, _, _ := tf.Create("alice", nil, now)
	if _, _, err := tf.Create("bad name", nil, now); !errors.Is(err, ErrBadTokenName) {
		t.Fatalf("bad name: %v", err)
	}
	if err := tf.Write(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), tok[len(tokenPrefix)+tokenIDLen+1:]) {
		t.Fatal("the tokens file holds a token's secret")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("tokens file mode %v, want 0600", fi.Mode().Perm())
	}
	tf, err = ReadTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tf.Verify(tok)
	if err != nil || got.ID != e.ID || got.Principal().String() != "token:alice" || got.Grants[0] != "produce:orders" {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
	// A token with a known id and a wrong secret, an unknown one, a
	// malformed one.
	at := len(tokenPrefix) + tokenIDLen + 1 // the secret's first character
	swap := byte('A')
	if tok[at] == 'A' {
		swap = 'B'
	}
	wrong := tok[:at] + string(swap) + tok[at+1:]
	for name, tc := range map[string]struct {
		tok  string
		want error
	}{
		"wrong secret": {tok: wrong, want: ErrUnknownToken}, "unknown id": {tok: tokenPrefix + "0123456789abcdef" + tok[len(tokenPrefix)+tokenIDLen:], want: ErrUnknownToken},
		"empty": {tok: "", want: ErrMalformedToken}, "short": {tok: tok[:20], want: ErrMalformedToken},
		// The id's first character is made a letter: a random id of
		// digits only is its own upper case (1 run in 1,850).
		"upper id": {tok: tokenPrefix + "A" + strings.ToUpper(tok[len(tokenPrefix)+1:len(tokenPrefix)+tokenIDLen]) + tok[len(tokenPrefix)+tokenIDLen:], want: ErrMalformedToken},
		// The right id and secret in the wrong frame: another prefix, or no
		// '_' between the id and the secret.
		"other prefix": {tok: "wail-" + tok[len(tokenPrefix):], want: ErrMalformedToken},
		"no separator": {tok: tok[:at-1] + "x" + tok[at:], want: ErrMalformedToken},
	} {
		if _, err := tf.Verify(tc.tok); !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify: %v, want %v", name, err, tc.want)
		}
	}
	// By id: the one token; then by name: the other.
	if n := tf.Revoke(e.ID, now); n != 1 {
		t.Fatalf("revoked %d by id, want 1", n)
	}
	if n := tf.Revoke("alice", now); n != 1 {
		t.Fatalf("revoked %d, want 1", n)
	}
	if n := tf.Revoke("alice", now); n != 0 {
		t.Fatalf("revoked %d again, want 0", n)
	}
	for _, k := range []string{tok, tok2} {
		if _, err := tf.Verify(k); !errors.Is(err, ErrRevokedToken) {
			t.Errorf("a revoked token: %v", err)
		}
	}
	// A token made on a file that was read verifies at once.
	tok3, _, _ := tf.Create("carol", nil, now)
	if e, err := tf.Verify(tok3); err != nil || e.Name != "carol" {
		t.Errorf("a token made after reading: %+v, %v", e, err)
	}
}

func TestParseTokenFileRefuses(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"not JSON":   `{`,
		"short id":   `{"tokens":[{"id":"01","name":"a","sha256":"` + strings.Repeat("0", 64) + `"}]}`,
		"bad hash":   `{"tokens":[{"id":"0123456789abcdef","name":"a","sha256":"zz"}]}`,
		"short hash": `{"tokens":[{"id":"0123456789abcdef","name":"a","sha256":"` + strings.Repeat("0", 62) + `"}]}`,
		"bad name":   `{"tokens":[{"id":"0123456789abcdef","name":"a b","sha256":"` + strings.Repeat("0", 64) + `"}]}`,
		"bad grant":  `{"tokens":[{"id":"0123456789abcdef","name":"a","sha256":"` + strings.Repeat("0", 64) + `","grants":["write:t"]}]}`,
		"repeated id": `{"tokens":[{"id":"0123456789abcdef","name":"a","sha256":"` + strings.Repeat("0", 64) + `"},` +
			`{"id":"0123456789abcdef","name":"b","sha256":"` + strings.Repeat("0", 64) + `"}]}`,
	} {
		if _, err := ParseTokenFile([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestTokensOfAFileNotRead: a token made on a tokens file built in
// memory (not read: `wail token create` on a missing file) verifies,
// the first one made included, and only with its own secret.
func TestTokensOfAFileNotRead(t *testing.T) {
	t.Parallel()
	tf := &TokenFile{}
	var toks []string
	for _, name := range []string{"alice", "bob"} {
		tok, _, err := tf.Create(name, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	for i, tok := range toks {
		if e, err := tf.Verify(tok); err != nil || e.Name != []string{"alice", "bob"}[i] {
			t.Errorf("token %d: %+v, %v", i, e, err)
		}
	}
	// bob's id with alice's secret.
	at := len(tokenPrefix) + tokenIDLen
	if _, err := tf.Verify(toks[1][:at] + toks[0][at:]); !errors.Is(err, ErrUnknownToken) {
		t.Errorf("another token's secret: %v, want ErrUnknownToken", err)
	}
}

// FuzzParseToken: any string parses or fails with ErrMalformedToken;
// Verify of any string never panics and never passes.
func FuzzParseToken(f *testing.F) {
	tf := &TokenFile{}
	tok, _, _ := tf.Create("alice", nil, time.Now())
	for _, s := range []string{tok, "", "wail_", tok[:len(tok)-1] + "=", "wail_0123456789abcdef_" + strings.Repeat("-", 43)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseToken(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedToken) {
				t.Fatalf("ParseToken(%q): %v, not ErrMalformedToken", s, err)
			}
		} else if len(id) != tokenIDLen || len(s) != TokenLen {
			t.Fatalf("ParseToken(%q) = %q", s, id)
		}
		if _, err := tf.Verify(s); err == nil && s != tok {
			t.Fatalf("Verify(%q) passed", s)
		}
	})
}

// FuzzParsePrincipal: any string parses into a principal that prints back
// as itself, or fails with ErrBadPrincipal.
func FuzzParsePrincipal(f *testing.F) {
	for _, s := range []string{"token:alice", "cert:orders svc", "cert:spiffe://x/y", "", "token:", ":", "cert:\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrincipal(s)
		if err != nil {
			if !errors.Is(err, ErrBadPrincipal) {
				t.Fatalf("ParsePrincipal(%q): %v", s, err)
			}
			return
		}
		if p.String() != s || p.IsZero() {
			t.Fatalf("ParsePrincipal(%q) = %v", s, p)
		}
	})
}

// FuzzGrant: any grant parses or fails with ErrBadGrant; a parsed one
// prints as one that parses the same, and Match never panics.
func FuzzGrant(f *testing.F) {
	for _, s := range []string{"produce:orders", "admin", "*:*", "consume:o_*x*", "read:", ":"} {
		f.Add(s, "orders")
	}
	f.Fuzz(func(t *testing.T, s, table string) {
		g, err := ParseGrant(s)
		if err != nil {
			if !errors.Is(err, ErrBadGrant) {
				t.Fatalf("ParseGrant(%q): %v", s, err)
			}
			return
		}
		again, err := ParseGrant(g.String())
		if err != nil || again != g {
			t.Fatalf("ParseGrant(%q) = %v, which reparses as %v, %v", s, g, again, err)
		}
		if g.Tables == "*" && !g.Allows(g.Permission, table) && g.Permission != All {
			t.Fatalf("%v does not allow table %q", g, table)
		}
		_ = Match(g.Tables, table)
	})
}

// FuzzParseTokenFile: any file parses or fails with an error; one that
// parses writes back and parses the same, and no token verifies against
// it by accident.
func FuzzParseTokenFile(f *testing.F) {
	tf := &TokenFile{}
	tok, _, _ := tf.Create("alice", []Grant{{Produce, "orders"}}, time.Unix(0, 0))
	tf.Revoke("nobody", time.Unix(0, 0))
	good, _ := json.Marshal(tf)
	for _, s := range []string{string(good), `{}`, `{"tokens":null}`, `{"tokens":[{}]}`, `[`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		parsed, err := ParseTokenFile(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(parsed)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseTokenFile(again); err != nil {
			t.Fatalf("%s parsed, but its re-encoding %s does not: %v", b, again, err)
		}
		if e, err := parsed.Verify(tok); err == nil && string(b) != string(good) && e.SHA256 != hashToken(tok) {
			t.Fatalf("a token verified against an entry without its hash: %+v", e)
		}
	})
}

// TestMetricsGrantsNoTable: "metrics" is for scraping /metrics: it is no
// permission on a table, so a scraper's token neither lists nor describes
// tables nor reads the schema registry (what Any asks for).
func TestMetricsGrantsNoTable(t *testing.T) {
	t.Parallel()
	gs, err := ParseGrants([]string{"metrics"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		perm   Permission
		tables []string
		want   bool
	}{
		{Metrics, nil, true},
		{Any, []string{"orders"}, false},
		{Any, nil, false},
		{Read, []string{"orders"}, false},
	} {
		if got := Allowed(gs, tc.perm, tc.tables); got != tc.want {
			t.Errorf("metrics only: Allowed(%s, %q) = %v, want %v", tc.perm, tc.tables, got, tc.want)
		}
	}
	// "*" is every permission, a table one included.
	if !Allowed([]Grant{{All, "*"}}, Any, []string{"orders"}) || !Allowed([]Grant{{Metrics, "*"}, {Read, "o*"}}, Any, nil) {
		t.Error("a grant on tables no longer meets Any")
	}
}

// TestTokenFileSurvivesCrash: a token change that Write reported done is
// there after a power loss: a revoked token stays revoked.
func TestTokenFileSurvivesCrash(t *testing.T) {
	t.Parallel()
	fsys := vfs.NewMem()
	if err := fsys.MkdirAll("/data", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := fsys.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	const path = "/data/tokens.json"
	tf := &TokenFile{}
	tok, _, err := tf.Create("ci", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := tf.WriteFS(fsys, path); err != nil {
		t.Fatal(err)
	}
	fsys = fsys.Crash()
	got, err := ReadTokenFileFS(fsys, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := got.Verify(tok); err != nil {
		t.Fatalf("after a crash, the token created before it: %v", err)
	}
	if got.Revoke("ci", time.Now()) != 1 {
		t.Fatal("nothing revoked")
	}
	if err := got.WriteFS(fsys, path); err != nil {
		t.Fatal(err)
	}
	fsys = fsys.Crash()
	after, err := ReadTokenFileFS(fsys, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := after.Verify(tok); !errors.Is(err, ErrRevokedToken) {
		t.Fatalf("after a crash, the token revoked before it: %v, want %v", err, ErrRevokedToken)
	}
}

// TestTokenFileWritableByOthers: a tokens file that users other than its
// owner may write is refused (whoever writes it makes tokens, admin ones
// included), saying how to fix it; read-only for others is fine (it holds
// only hashes).
func TestTokenFileWritableByOthers(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := (&TokenFile{}).Write(path); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o600, true}, {0o644, true}, {0o664, false}, {0o606, false}, {0o666, false}} {
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		_, err := ReadTokenFile(path)
		if tc.ok != (err == nil) || err != nil && (!errors.Is(err, ErrTokenFileMode) || !strings.Contains(err.Error(), "chmod 600")) {
			t.Errorf("mode %o: %v", tc.mode, err)
		}
	}
}
