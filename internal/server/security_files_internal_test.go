package server

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/logbuf"
	"github.com/wail-cdc/wail/internal/tlstest"
)

// securityServer is a Server with what openSecurity uses, logging to
// logs.
func securityServer(cfg config.Config, logs *logbuf.Buffer) *Server {
	return &Server{cfg: cfg, logger: slog.New(slog.NewTextHandler(logs, nil)),
		health: health.NewRegistry(prometheus.NewRegistry()), registry: prometheus.NewRegistry()}
}

// TestTLSKeyFileModeWarned: a TLS key that others may read (a secret
// leaked) or that others than its owner may write is warned of at the
// start, saying what to run; an owner-only key (or one its group reads)
// is not. The start goes on, as with a tokens file others may read.
func TestTLSKeyFileModeWarned(t *testing.T) {
	t.Parallel()
	pair := tlstest.NewCA(t, "ca").Server(t, "wail-server")
	for _, tc := range []struct {
		mode os.FileMode
		warn bool
	}{
		{0o600, false},
		{0o640, false},
		{0o644, true},
		{0o604, true},
		{0o660, true},
		{0o602, true},
	} {
		dir := t.TempDir()
		key := filepath.Join(dir, "key.pem")
		b, err := os.ReadFile(pair.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(key, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(key, tc.mode); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(t)
		cfg.Security.TLS = config.TLS{CertFile: pair.CertFile, KeyFile: key}
		var logs logbuf.Buffer
		if err := securityServer(cfg, &logs).openSecurity(); err != nil {
			t.Fatalf("mode %o: %v", tc.mode, err)
		}
		warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "chmod 600 "+key)
		if warned != tc.warn {
			t.Errorf("key mode %o: warned %v, want %v:\n%s", tc.mode, warned, tc.warn, logs.String())
		}
	}
}

// TestTLSKeyFileModeWarnedAtRenewal: a renewal that writes the new key
// readable by all (a renewal tool's umask) is warned of when the server
// loads it, as at the start; once, not at every reload.
func TestTLSKeyFileModeWarnedAtRenewal(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "ca")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Server(t, "first").CopyTo(t, certFile, keyFile)
	if err := os.Chmod(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Security.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile}
	cfg.Security.ReloadInterval = time.Millisecond
	var logs logbuf.Buffer
	s := securityServer(cfg, &logs)
	if err := s.openSecurity(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "not kept secret") {
		t.Fatalf("warned of a key of mode 600:\n%s", logs.String())
	}
	renewed := ca.Server(t, "renewed")
	renewed.CopyTo(t, certFile, keyFile)
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	handshake := func() string {
		t.Helper()
		time.Sleep(5 * time.Millisecond) // past ReloadInterval
		c, err := s.tls.GetConfigForClient(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Certificates[0].Leaf.Subject.CommonName
	}
	deadline := time.Now().Add(10 * time.Second)
	for handshake() != "renewed" {
		if time.Now().After(deadline) {
			t.Fatal("the renewed pair never loaded")
		}
	}
	if n := strings.Count(logs.String(), "chmod 600 "+keyFile); n != 1 {
		t.Fatalf("%d warnings naming chmod 600 %s after the renewal, want 1:\n%s", n, keyFile, logs.String())
	}
	ca.Server(t, "again").CopyTo(t, certFile, keyFile)
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	for handshake() != "again" {
		if time.Now().After(deadline) {
			t.Fatal("the second renewal never loaded")
		}
	}
	if n := strings.Count(logs.String(), "chmod 600 "+keyFile); n != 1 {
		t.Fatalf("%d warnings after a second renewal of the same mode, want still 1:\n%s", n, logs.String())
	}
}

// writeKeySet writes a key set of one Ed25519 key to a file of dir.
func writeKeySet(t *testing.T, dir string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: "k1", Algorithm: "EdDSA", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestJWTWithoutAudienceWarned: JWTs accepted with no audience configured
// are warned of at the start and by doctor, naming the key to set: a
// token the same issuer minted for another service is accepted.
func TestJWTWithoutAudienceWarned(t *testing.T) {
	t.Parallel()
	for _, audience := range []string{"", "wail"} {
		cfg := testConfig(t)
		cfg.Security.Auth.Enabled = true
		cfg.Security.Auth.JWT.JWKSFile = writeKeySet(t, t.TempDir())
		cfg.Security.Auth.JWT.Audience = audience
		var logs logbuf.Buffer
		if err := securityServer(cfg, &logs).openSecurity(); err != nil {
			t.Fatalf("audience %q: %v", audience, err)
		}
		warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "security.auth.jwt.audience")
		if warned != (audience == "") {
			t.Errorf("start, audience %q: warned %v:\n%s", audience, warned, logs.String())
		}
		var out strings.Builder
		doctorSecurity(cfg, &out, func(check, format string, args ...any) {
			t.Errorf("doctor %s: "+format, append([]any{check}, args...)...)
		})
		found := strings.Contains(out.String(), "WARN") && strings.Contains(out.String(), "security.auth.jwt.audience")
		if found != (audience == "") {
			t.Errorf("doctor, audience %q: finding %v:\n%s", audience, found, out.String())
		}
	}
}
