package servicetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMissingRecordsTheSkip(t *testing.T) {
	t.Setenv("CI", "")
	path := filepath.Join(t.TempDir(), "skipped")
	t.Setenv(SkippedEnv, path)
	t.Run("needs-kafka", func(t *testing.T) {
		Missing(t, "Kafka not reachable")
		t.Error("Missing returned")
	})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); !strings.Contains(got, "TestMissingRecordsTheSkip/needs-kafka: Kafka not reachable") {
		t.Fatalf("recorded %q", got)
	}
}
