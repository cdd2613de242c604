package kafka

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/wail-cdc/wail/internal/intentlog"
)

func TestTopicNames(t *testing.T) {
	t.Parallel()
	ns := names{{Prefix: "wail.intents.", Template: "prod.{table}.intents"}, {Prefix: "wail.events.", Template: "cdc.{table}"}}
	cases := []struct{ internal, external string }{
		{"wail.intents.orders", "prod.orders.intents"},
		{"wail.events.orders", "cdc.orders"},
		{"wail.events.a.b", "cdc.a.b"},
		{"other", "other"},
	}
	for _, c := range cases {
		if got := ns.external(c.internal); got != c.external {
			t.Errorf("external(%q) = %q, want %q", c.internal, got, c.external)
		}
		if got := ns.internal(c.external); got != c.internal {
			t.Errorf("internal(%q) = %q, want %q", c.external, got, c.internal)
		}
	}
	bad := []names{
		{{Prefix: "wail.intents.", Template: "no-placeholder"}},
		{{Prefix: "", Template: "{table}"}},
		{{Prefix: "a.", Template: "{table}.{table}"}},
		{{Prefix: "a.", Template: "x.{table}"}, {Prefix: "b.", Template: "x.{table}"}},
	}
	for _, b := range bad {
		if err := b.validate(); err == nil {
			t.Errorf("validate(%v) accepted", b)
		}
	}
}

// TestTopicNamesOnBroker: with TopicNames, the brokers see the configured
// names while the Log and the Member speak wail's.
func TestTopicNamesOnBroker(t *testing.T) {
	t.Parallel()
	brokers := fakeBrokers(t)
	l := openLog(t, brokers, func(o *Options) {
		o.TopicNames = []TopicName{{Prefix: "wail.intents.", Template: "env.{table}.intents"}}
	})
	ctx := testCtx(t, 30*time.Second)
	if err := l.CreateTopic(ctx, "wail.intents.t1", 2, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, "wail.intents.t1", []*intentlog.Record{{Key: []byte("k"), Value: []byte("v")}}); err != nil {
		t.Fatal(err)
	}
	topics, err := kadm.NewClient(l.cl).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !topics.Has("env.t1.intents") || topics.Has("wail.intents.t1") {
		t.Fatalf("topics on the broker: %v", topics.Names())
	}
	m, a := join(t, l, "g-names", "one", "wail.intents.t1")
	defer m.Close(ctx)
	waitFor(t, "assignment under wail's name", func() bool { return a.count() == 2 })
	if err := m.Transact(ctx, 0, nil, map[string]map[int32]int64{"wail.intents.t1": {0: 1}}); err != nil {
		t.Fatal(err)
	}
	got, err := l.Committed(ctx, "g-names", "wail.intents.t1")
	if err != nil || got[0] != 1 {
		t.Fatalf("committed %v, %v", got, err)
	}
}
