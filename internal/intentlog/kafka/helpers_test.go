package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/servicetest"
)

const brokersEnv = "WAIL_TEST_KAFKA_BROKERS"

// realBrokers returns the brokers of the test cluster: WAIL_TEST_KAFKA_BROKERS
// (comma-separated, default 127.0.0.1:9092) when the first one accepts a TCP
// connection. Otherwise it skips the test, or fails it under CI (CI=true),
// since CI must not skip these tests.
func realBrokers(t testing.TB) []string {
	t.Helper()
	env := os.Getenv(brokersEnv)
	if env == "" {
		env = "127.0.0.1:9092"
	}
	brokers := strings.Split(env, ",")
	conn, err := net.DialTimeout("tcp", brokers[0], time.Second)
	if err == nil {
		_ = conn.Close()
		return brokers
	}
	msg := "Kafka not reachable: run scripts/kafka.sh up (" + brokersEnv + "=" + env + ": " + err.Error() + ")"
	servicetest.Missing(t, msg)
	return nil
}

// fakeBrokers starts an in-process kfake cluster for the test.
func fakeBrokers(t testing.TB, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

// openLog opens a Log on brokers, closed when the test ends.
func openLog(t testing.TB, brokers []string, mod func(*Options)) *Log {
	t.Helper()
	opts := Options{Brokers: brokers, ClientID: "wail-test", Logger: testLogger(t)}
	if mod != nil {
		mod(&opts)
	}
	l, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// topicName returns a topic name no other test run uses.
func topicName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// testCtx ends with the test or after d.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// topicJanitor remembers the topics a test creates on a persistent cluster
// and deletes them when the test ends.
type topicJanitor struct {
	brokers []string
	mu      sync.Mutex
	topics  map[string]bool
}

func newJanitor(t testing.TB, brokers []string) *topicJanitor {
	j := &topicJanitor{brokers: brokers, topics: map[string]bool{}}
	t.Cleanup(func() { j.deleteAll(t) })
	return j
}

func (j *topicJanitor) add(topic string) {
	j.mu.Lock()
	j.topics[topic] = true
	j.mu.Unlock()
}

func (j *topicJanitor) deleteAll(t testing.TB) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.topics) == 0 {
		return
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(j.brokers...))
	if err != nil {
		t.Errorf("janitor: %v", err)
		return
	}
	defer cl.Close()
	topics := make([]string, 0, len(j.topics))
	for topic := range j.topics {
		topics = append(topics, topic)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).DeleteTopics(ctx, topics...); err != nil {
		t.Logf("janitor: deleting %d topics: %v", len(topics), err)
	}
}

// tracked wraps a Log so that every topic it creates is handed to a janitor.
type tracked struct {
	*Log
	j *topicJanitor
}

func (l tracked) CreateTopic(ctx context.Context, topic string, n int32, opts intentlog.TopicOptions) error {
	l.j.add(topic)
	return l.Log.CreateTopic(ctx, topic, n, opts)
}

// closedAddr returns a 127.0.0.1 address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// readValues reads a partition to its end as a read_committed reader and
// returns the records' values.
func readValues(t testing.TB, ctx context.Context, l *Log, topic string, partition int32) []string {
	t.Helper()
	_, end, err := l.Bounds(ctx, topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	r, err := l.NewReader(topic, partition, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var values []string
	for r.Position() < end {
		recs, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			values = append(values, string(rec.Value))
		}
	}
	return values
}
