package e2etest

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/server/servertest"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestValueLimitEmbedded: a value of exactly limits.max_value_bytes (1 MiB)
// cannot fit the embedded log's 1 MiB record once its event adds key,
// table, event id and headers. The proxy must refuse it (InvalidArgument,
// naming the effective limit and where it comes from) instead of
// acknowledging a write whose event can never be published; the largest
// value it accepts must reach the bus, for a short and for a 4 KiB key.
func TestValueLimitEmbedded(t *testing.T) {
	t.Parallel()
	url := servertest.Start(t, nil)
	checkValueLimit(t, url, "orders", "embedded log")
}

// TestValueLimitKafka is TestValueLimitEmbedded on Kafka, where the limit
// is the event topic's max.message.bytes: an operator created the topic
// with 1 MiB (Kafka's usual default) before wail did, so the proxy must
// read it from the brokers.
func TestValueLimitKafka(t *testing.T) {
	brokers := kafkaBrokers(t)
	table := sqltest.Name("lim_")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := eventbus.Topic(table)
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{
		"max.message.bytes": kadm.StringPtr("1048576"), "cleanup.policy": kadm.StringPtr("compact"),
	}, topic); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), topic, "wail.intents."+table) })
	url := servertest.Start(t, func(c *config.Config) {
		c.Log.Kind = config.LogKafka
		c.Log.Kafka.Brokers = brokers
		c.Log.Kafka.ReplicationFactor = 1
		c.Resolver.Group = "wail-resolver." + table
	})
	checkValueLimit(t, url, table, "max.message.bytes")
}

var largestValue = regexp.MustCompile(`the largest value this key can take is (\d+) bytes`)

// checkValueLimit creates a one-partition table and checks, for a short
// and a 4 KiB key, that a 1 MiB value is refused with a message that names
// the largest value the key can take and the source of the limit (want),
// that one byte more than that is refused, and that exactly that much is
// acknowledged and published.
func checkValueLimit(t *testing.T, url, table, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: table, Partitions: 1})); err != nil {
		t.Fatal(err)
	}
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	put := func(key []byte, n int) (*wailv1.WriteResult, error) {
		v := bytes.Repeat([]byte{'v'}, n)
		r, err := pc.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: table, Key: key, Value: v}))
		if err != nil {
			return nil, err
		}
		return r.Msg.Result, nil
	}
	stream, err := wailv1connect.NewEventServiceClient(http.DefaultClient, url).
		Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: table, From: "beginning"}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	for _, key := range [][]byte{[]byte("k"), bytes.Repeat([]byte{'K'}, 4096)} {
		_, err := put(key, 1<<20)
		if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), want) {
			t.Fatalf("%d-byte key, 1 MiB value: %v, want invalid_argument naming %q", len(key), err, want)
		}
		m := largestValue.FindStringSubmatch(err.Error())
		if m == nil {
			t.Fatalf("the error does not name the largest value: %v", err)
		}
		n, _ := strconv.Atoi(m[1])
		t.Logf("%d-byte key: %v", len(key), err)
		if _, err := put(key, n+1); connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Fatalf("%d-byte key, value of %d bytes (one over the limit): %v, want invalid_argument", len(key), n+1, err)
		}
		r, err := put(key, n)
		if err != nil || !r.IntentLogged || !r.Stored {
			t.Fatalf("%d-byte key, value of %d bytes (the limit): %+v, %v", len(key), n, r, err)
		}
		if !stream.Receive() {
			t.Fatalf("no event for the largest value: %v", stream.Err())
		}
		ev := stream.Msg().Event
		if !bytes.Equal(ev.Key, key) || ev.Version != r.Version || len(ev.Value) != n {
			t.Fatalf("event of key %.8q version %d with %d bytes, want version %d with %d bytes", ev.Key, ev.Version, len(ev.Value), r.Version, n)
		}
	}
}
