package e2etest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog/kafka"
	"github.com/wail-cdc/wail/internal/store/pebble"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// kafkaBrokers returns the test broker, or skips (fails under CI=true) when
// it is not reachable.
func kafkaBrokers(t *testing.T) []string {
	t.Helper()
	brokers := os.Getenv("WAIL_TEST_KAFKA_BROKERS")
	if brokers == "" {
		brokers = "127.0.0.1:9092"
	}
	list := strings.Split(brokers, ",")
	conn, err := net.DialTimeout("tcp", list[0], time.Second)
	if err != nil {
		msg := "Kafka not reachable at " + list[0] + ": run scripts/kafka.sh up (" + err.Error() + ")"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	conn.Close()
	return list
}

// TestInvariantsKafka runs the invariant suite with Kafka as the intent log
// and the event bus, restarting the broker mid-stream.
func TestInvariantsKafka(t *testing.T) {
	brokers := kafkaBrokers(t)
	opts := DefaultOptions()
	opts.Table = sqltest.Name("inv_")
	opts.Disrupt = func(t *testing.T) {
		start := time.Now()
		out, err := command("bash", filepath.Join("..", "..", "scripts", "kafka.sh"), "restart")
		if err != nil {
			t.Fatalf("restart kafka: %v\n%s", err, out)
		}
		t.Logf("kafka restarted in %s", time.Since(start).Round(time.Millisecond))
	}
	Run(t, func(t *testing.T) Backends {
		log, err := kafka.Open(context.Background(), kafka.Options{Brokers: brokers})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { log.Close() })
		st, err := pebble.Open(t.TempDir(), pebble.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return Backends{Log: log, Store: st}
	}, opts)
}
