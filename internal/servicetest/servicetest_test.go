package servicetest

import (
	"os"
	"path/filepath"
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
	if got := string(b); got != "internal/servicetest\tTestMissingRecordsTheSkip/needs-kafka\tKafka not reachable\n" {
		t.Fatalf("recorded %q", got)
	}
}
