package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSinksConfig(t *testing.T) {
	t.Setenv("WAIL_TEST_SINK_SECRET", "from-env")
	for _, c := range []struct {
		name, yaml, wantErr string
	}{
		{"ok", "sinks:\n  tls: {ca_file: ca.pem, cert_file: c.pem, key_file: k.pem}\n  webhooks:\n    - {table: orders, name: a, url: 'http://h/x', secret_env: WAIL_TEST_SINK_SECRET, max_retry: 1h, start: snapshot}\n", ""},
		{"bad url", "sinks:\n  webhooks:\n    - {table: orders, name: a, url: 'ftp://h/x'}\n", "sinks.webhooks[0] (a): invalid sink: url"},
		{"bad name", "sinks:\n  webhooks:\n    - {table: orders, name: A, url: 'http://h/'}\n", "invalid sink: name"},
		{"twice", "sinks:\n  webhooks:\n    - {table: orders, name: a, url: 'http://h/'}\n    - {table: orders, name: a, url: 'http://h/2'}\n", "listed twice"},
		{"secret and env", "sinks:\n  webhooks:\n    - {table: orders, name: a, url: 'http://h/', secret: x, secret_env: WAIL_TEST_SINK_SECRET}\n", "use one"},
		{"env unset", "sinks:\n  webhooks:\n    - {table: orders, name: a, url: 'http://h/', secret_env: WAIL_TEST_UNSET_9}\n", "is not set"},
		{"backoff", "sinks:\n  webhooks:\n    - {table: orders, name: a, url: 'http://h/', backoff_min: 2s, backoff_max: 1s}\n", "backoff"},
		{"refresh", "sinks:\n  refresh: 0s\n", "sinks.refresh 0s is below its minimum of 10ms"},
		{"tls cert without key", "sinks:\n  tls: {cert_file: c.pem}\n", "sinks.tls.cert_file and key_file go together"},
		{"tls key without cert", "sinks:\n  tls: {key_file: k.pem}\n", "sinks.tls.cert_file and key_file go together"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "wail.yaml")
			if err := os.WriteFile(p, []byte(c.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(p)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatal(err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("%v, want an error with %q", err, c.wantErr)
			case c.wantErr == "":
				s, err := cfg.Sinks.Webhooks[0].Sink()
				if err != nil || s.Secret != "from-env" || s.MaxRetryMs != 3_600_000 || s.Format != "json" || !cfg.Sinks.Enabled {
					t.Fatalf("%v, %v", s, err)
				}
			}
		})
	}
}
