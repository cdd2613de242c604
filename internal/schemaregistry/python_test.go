package schemaregistry

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/servicetest"
)

// TestConfluentPythonClient: confluent-kafka's SchemaRegistryClient (PyPI
// confluent-kafka; a client no one here wrote) registers, fetches, checks,
// configures and deletes against the registry (testdata/confluent_client.py).
// Needs python3 with confluent-kafka: pip install 'confluent-kafka[protobuf,schemaregistry]'.
func TestConfluentPythonClient(t *testing.T) {
	t.Parallel()
	if err := exec.Command("python3", "-c", "import confluent_kafka.schema_registry").Run(); err != nil {
		servicetest.Missing(t, "python3 with confluent-kafka is missing: pip install 'confluent-kafka[protobuf,schemaregistry]'")
	}
	_, _, url := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "python3", "testdata/confluent_client.py", url).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "all steps passed") {
		t.Fatalf("confluent-kafka client: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "ok: "); n < 28 {
		t.Fatalf("only %d steps ran:\n%s", n, out)
	}
}
