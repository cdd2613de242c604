package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/wail-cdc/wail/internal/config"
)

// TestServeFlagsOverTheFile: the flags of serve (proxy, resolve, doctor)
// override the file before anything is validated, so that a flag may give
// what the file leaves out (a DSN or brokers kept out of a shared file),
// and what a role sets is validated too.
func TestServeFlagsOverTheFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, file string
		args       []string
		role       func(*config.Config)
		check      func(config.Config) bool
		wantErr    string
	}{
		{name: "dsn from a flag", file: "store:\n  kind: postgres\n", args: []string{"--dsn", "postgres://u@127.0.0.1:5432/db"},
			check: func(c config.Config) bool { return c.Store.DSN == "postgres://u@127.0.0.1:5432/db" }},
		{name: "brokers from a flag", file: "log:\n  kind: kafka\n", args: []string{"--brokers", "127.0.0.1:9092"},
			check: func(c config.Config) bool { return len(c.Log.Kafka.Brokers) == 1 }},
		{name: "kind from a flag", file: "store:\n  dsn: postgres://u@127.0.0.1:5432/db\n", args: []string{"--store", "postgres"},
			check: func(c config.Config) bool { return c.Store.Kind == config.StorePostgres }},
		{name: "a flag still validated", file: "", args: []string{"--proxy-id", "2000"}, wantErr: "proxy_id 2000 out of range 0..1023"},
		{name: "the file still validated", file: "store:\n  kind: postgres\n", wantErr: "store.dsn is required for store.kind postgres"},
		{name: "the role validated", file: "proxy:\n  enabled: false\n", role: func(c *config.Config) { c.Resolver.Enabled = false },
			wantErr: "nothing to run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f serveFlags
			cmd := &cobra.Command{Use: "serve"}
			f.register(cmd, roleServe)
			p := filepath.Join(t.TempDir(), "wail.yaml")
			if err := os.WriteFile(p, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := cmd.ParseFlags(append([]string{"--config", p}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			cfg, err := f.config(cmd, tc.role)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			case tc.wantErr == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tc.check != nil && !tc.check(cfg):
				t.Fatalf("flags not applied: %+v", cfg.Store)
			}
		})
	}
}
