package kafka

import (
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/logtest"
)

// TestLogFake runs the acceptance suite on franz-go's in-process kfake
// cluster: always, and fast. kfake has no replication and one event loop,
// so it checks the mapping, not Kafka's behaviour.
func TestLogFake(t *testing.T) {
	brokers := fakeBrokers(t)
	logtest.Run(t, func(t *testing.T, _ string) intentlog.Log {
		return open(t, brokers)
	})
}

// TestLogKafka runs the acceptance suite on the real broker of
// WAIL_TEST_KAFKA_BROKERS (scripts/kafka.sh up) and deletes its topics after.
func TestLogKafka(t *testing.T) {
	brokers := realBrokers(t)
	j := newJanitor(t, brokers)
	logtest.Run(t, func(t *testing.T, _ string) intentlog.Log {
		return tracked{open(t, brokers), j}
	})
}

// open opens a Log for the suite, which closes it itself.
func open(t *testing.T, brokers []string) *Log {
	t.Helper()
	l, err := Open(t.Context(), Options{Brokers: brokers, ClientID: "wail-logtest", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return l
}
