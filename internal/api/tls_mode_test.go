package api

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/tlstest"
)

// TestTLSTrustFileMode: a client CA file or a CRL file that others than
// its owner may write is refused (ErrTLSFileMode, saying what to run), at
// the start and at a reload: whoever writes the one makes wail accept any
// client certificate, the other stops a revocation. A reload refused keeps
// the last good files and is reported.
func TestTLSTrustFileMode(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "clients")
	srv := ca.Server(t, "wail-server")
	for _, tc := range []struct {
		name string
		mode os.FileMode
		crl  bool
	}{
		{"client CA world-writable", 0o666, false},
		{"client CA group-writable", 0o620, false},
		{"CRL world-writable", 0o646, true},
		{"CRL group-writable", 0o660, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			caFile, crlFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.crl")
			copyFile(t, ca.File, caFile)
			ca.CRL(t, crlFile)
			target := caFile
			if tc.crl {
				target = crlFile
			}
			cfg := config.TLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: caFile, CRLFile: crlFile}
			// At the start.
			if err := os.Chmod(target, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, _, err := ServerTLS(cfg, 0, nil, nil)
			if !errors.Is(err, ErrTLSFileMode) || !strings.Contains(err.Error(), "chmod 644 "+target) {
				t.Fatalf("start with %s mode %o: %v; want ErrTLSFileMode saying chmod 644 %s", filepath.Base(target), tc.mode, err, target)
			}
			// At a reload: the file made writable is refused, the last
			// good trust stays.
			if err := os.Chmod(target, 0o644); err != nil {
				t.Fatal(err)
			}
			var reported error
			_, trust, err := ServerTLS(cfg, time.Nanosecond, func(err error) { reported = err }, nil)
			if err != nil {
				t.Fatal(err)
			}
			before := trust()
			if err := os.Chmod(target, tc.mode); err != nil {
				t.Fatal(err)
			}
			if got := trust(); got != before {
				t.Errorf("a reload of %s mode %o changed the trust in force", filepath.Base(target), tc.mode)
			}
			if !errors.Is(reported, ErrTLSFileMode) {
				t.Errorf("reload with %s mode %o reported %v; want ErrTLSFileMode", filepath.Base(target), tc.mode, reported)
			}
			if err := os.Chmod(target, 0o644); err != nil {
				t.Fatal(err)
			}
			_ = trust()
			if reported != nil {
				t.Errorf("back to 0644: still reported %v", reported)
			}
		})
	}
}

// TestClientTLSCAFileMode: the CA file wail trusts as a client (of an
// external schema registry, of webhook endpoints) is refused when others
// than its owner may write it: whoever could write it could add a CA and
// read or change what wail sends there (registry credentials, events).
func TestClientTLSCAFileMode(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "registry")
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o644, true}, {0o600, true}, {0o664, false}, {0o646, false}} {
		t.Run(fmt.Sprintf("%o", tc.mode), func(t *testing.T) {
			t.Parallel()
			caFile := filepath.Join(t.TempDir(), "ca.pem")
			copyFile(t, ca.File, caFile)
			if err := os.Chmod(caFile, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := ClientTLS(config.ClientTLS{CAFile: caFile}, 0, nil)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("mode %o refused: %v", tc.mode, err)
			case !tc.ok && (!errors.Is(err, ErrTLSFileMode) || !strings.Contains(err.Error(), "chmod 644 "+caFile)):
				t.Fatalf("mode %o: %v; want ErrTLSFileMode saying chmod 644 %s", tc.mode, err, caFile)
			}
		})
	}
}
