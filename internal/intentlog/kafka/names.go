package kafka

import (
	"fmt"
	"strings"
)

// TopicName renames wail's topics on Kafka: a topic whose name starts with
// Prefix (e.g. "wail.intents.") is called Template on the brokers, with
// "{table}" replaced by the rest of the name, e.g. Template
// "prod.cdc.{table}.intents". Every method of Log and Member takes and
// returns wail's names; only the brokers (and so kcat, and the errors)
// see the Kafka names.
type TopicName struct {
	Prefix   string
	Template string
}

const tablePlaceholder = "{table}"

// names maps wail's topic names to Kafka's and back.
type names []TopicName

func (ns names) validate() error {
	for i, n := range ns {
		if n.Prefix == "" || strings.Count(n.Template, tablePlaceholder) != 1 {
			return fmt.Errorf("topic name %q for %q: want one %s in the template and a prefix", n.Template, n.Prefix, tablePlaceholder)
		}
		for _, o := range ns[:i] {
			if o.Template == n.Template {
				return fmt.Errorf("topic names for %q and %q are both %q", o.Prefix, n.Prefix, n.Template)
			}
		}
	}
	return nil
}

// external is wail's topic as Kafka names it.
func (ns names) external(topic string) string {
	for _, n := range ns {
		if table, ok := strings.CutPrefix(topic, n.Prefix); ok {
			return strings.Replace(n.Template, tablePlaceholder, table, 1)
		}
	}
	return topic
}

// internal is a Kafka topic as wail names it.
func (ns names) internal(topic string) string {
	for _, n := range ns {
		before, after, _ := strings.Cut(n.Template, tablePlaceholder)
		if len(topic) > len(before)+len(after) && strings.HasPrefix(topic, before) && strings.HasSuffix(topic, after) {
			return n.Prefix + topic[len(before):len(topic)-len(after)]
		}
	}
	return topic
}

func (ns names) externalAll(topics []string) []string {
	out := make([]string, len(topics))
	for i, t := range topics {
		out[i] = ns.external(t)
	}
	return out
}

// internalMap renames the keys of a map from Kafka's names to wail's.
func internalMap[V any](ns names, m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[ns.internal(k)] = v
	}
	return out
}

// externalMap renames the keys of a map from wail's names to Kafka's.
func externalMap[V any](ns names, m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[ns.external(k)] = v
	}
	return out
}
