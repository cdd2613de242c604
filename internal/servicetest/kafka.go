package servicetest

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// KafkaBrokers returns the test brokers (WAIL_TEST_KAFKA_BROKERS, default
// 127.0.0.1:9092), or calls Missing when the first does not answer.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	brokers := os.Getenv("WAIL_TEST_KAFKA_BROKERS")
	if brokers == "" {
		brokers = "127.0.0.1:9092"
	}
	list := strings.Split(brokers, ",")
	conn, err := net.DialTimeout("tcp", list[0], time.Second)
	if err != nil {
		Missing(t, "Kafka not reachable at "+list[0]+": run scripts/kafka.sh up ("+err.Error()+")")
	}
	conn.Close()
	return list
}
