package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTokenPlaceFlags: --data-dir (and --tokens-source) apply to --config
// before it is validated, so that a configuration whose data_dir is not
// valid here is used with the --data-dir given; an empty --data-dir is
// refused (it put tokens.json at the root of the file system).
func TestTokenPlaceFlags(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "wail.yaml")
	if err := os.WriteFile(cfg, []byte("data_dir: \"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	if err := os.Mkdir(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runEnv(ctx, nil, "token", "create", "ops", "--grant", "admin:*", "--config", cfg, "--data-dir", dataDir)
	if code != 0 {
		t.Fatalf("--config with an empty data_dir, and --data-dir: code %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "tokens.json")); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runEnv(ctx, nil, "token", "ls", "--data-dir", "")
	if code != 2 || !strings.Contains(errOut, "--data-dir is empty") {
		t.Fatalf("an empty --data-dir: code %d: %s", code, errOut)
	}
	code, _, errOut = runEnv(ctx, nil, "token", "ls", "--tokens-file", "")
	if code != 2 || !strings.Contains(errOut, "--tokens-file is empty") {
		t.Fatalf("an empty --tokens-file: code %d: %s", code, errOut)
	}
	// A data dir that does not exist is no server's: a typo of it put the
	// token where no server reads it.
	code, _, errOut = runEnv(ctx, nil, "token", "create", "ops", "--grant", "admin:*", "--data-dir", filepath.Join(dir, "dtaa"))
	if code != 1 || !strings.Contains(errOut, "does not exist") {
		t.Fatalf("a missing --data-dir: code %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "dtaa")); err == nil {
		t.Fatal("the missing data dir was made")
	}
}
