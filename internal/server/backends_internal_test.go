package server

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wail-cdc/wail/internal/config"
)

// TestKafkaOptions: the log.kafka keys reach the Kafka log's options, the
// record batch limit included (4 MiB unless configured).
func TestKafkaOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml string
		want       int32
	}{
		{"default", "log:\n  kind: kafka\n  kafka:\n    brokers: [b:9092]\n", 4 << 20},
		{"configured", "log:\n  kind: kafka\n  kafka:\n    brokers: [b:9092]\n    max_message_bytes: 16777216\n", 16 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "wail.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			opts := kafkaOptions(cfg.Log.Kafka, nil)
			if opts.MaxMessageBytes != tc.want || len(opts.Brokers) != 1 || opts.ClientID != "wail" {
				t.Errorf("options %+v: max message bytes %d, want %d", opts, opts.MaxMessageBytes, tc.want)
			}
		})
	}
}
