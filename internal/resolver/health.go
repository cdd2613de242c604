package resolver

import (
	"fmt"
	"time"

	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/health"
)

// HealthSink receives the resolver's health conditions; *health.Registry
// implements it. Each partition of this process raises at most one, as
// component "resolver/<table>/<partition>", and clears it when it
// recovers or stops; plus "resolver/<table>/<partition>/truncated" once
// the intent log lost intents it had read, until it stops.
type HealthSink interface {
	Set(component string, s health.State, reason, action string)
	Clear(component string)
}

// DefaultStallAfter is when a partition whose oldest unresolved intent
// waits longer counts as stalled (at least stallFloor).
const DefaultStallAfter = time.Minute

// stallFloor is the least wait that counts as a stall for a table of
// visibility window w: twice what an intent may wait without any fault,
// its window and its recheck.
func stallFloor(w time.Duration, recheck float64) time.Duration {
	return 2 * (w + time.Duration(float64(w)*recheck))
}

type partitionHealth struct {
	sink       HealthSink
	component  string
	table      string
	partition  int32
	stallAfter time.Duration
	raised     bool
}

func newPartitionHealth(sink HealthSink, table string, p int32) partitionHealth {
	return partitionHealth{sink: sink, component: fmt.Sprintf("resolver/%s/%d", table, p), table: table, partition: p}
}

// observeHealth updates the partition's gauges and health condition:
// degraded while a key is parked or the oldest unresolved intent waits
// longer than stallAfter.
func (l *loop) observeHealth(now time.Time) {
	parked := l.core.Parked()
	var age time.Duration
	if at := l.core.OldestSeen(); !at.IsZero() {
		age = now.Sub(at)
	}
	l.m.parked.Set(float64(parked))
	l.m.oldest.Set(age.Seconds())
	h := &l.health
	switch {
	case parked > 0 && l.lettersFailing && l.letterTooLarge != "":
		h.setState(health.Unhealthy, fmt.Sprintf("a dead letter of table %s partition %d (key %s) does not fit the record limit of %s (%d bytes), "+
			"even cut to its key, intents and a short reason; its intents wait and the partition's committed offset waits for them",
			h.table, h.partition, reasonKey(l.letterTooLarge), dlq.Topic(h.table), l.letterRecord),
			"raise the record limit of "+dlq.Topic(h.table)+" (Kafka: `kafka-configs.sh --alter --entity-type topics --entity-name "+
				dlq.Topic(h.table)+" --add-config max.message.bytes=N`, N above the record limit named); "+
				"the letter lands at its next attempt; see docs/operations.md, Resolver")
	case parked > 0 && l.lettersFailing:
		h.set(fmt.Sprintf("%d keys of table %s partition %d are parked: their dead letters cannot be written to %s and are written again with backoff; "+
			"the partition's committed offset waits for them", parked, h.table, h.partition, dlq.Topic(h.table)),
			"read the resolver's warnings for the error (a full disk, the topic's record limit, the topic deleted) and fix it; "+
				"the keys resume once their letters land; see docs/operations.md, Resolver")
	case parked > 0:
		h.set(fmt.Sprintf("%d keys of table %s partition %d are parked: their store reads or event publishes fail and are retried",
			parked, h.table, h.partition),
			"read the resolver's warnings for the error; the keys resume once the store or bus serves them, or go to the "+
				"dead-letter queue after the table's max_attempts or max_retry_time (`wail dlq ls "+h.table+"`); see docs/operations.md, Resolver")
	case age > h.stallAfter:
		h.set(fmt.Sprintf("the oldest unresolved intent of table %s partition %d has waited %s (stalled after %s)",
			h.table, h.partition, age.Round(time.Second), h.stallAfter),
			"check that the store and the event bus answer and read the resolver's warnings; see docs/operations.md, Resolver")
	default:
		h.clear()
	}
}

func (h *partitionHealth) set(reason, action string) {
	h.setState(health.Degraded, reason, action)
}

func (h *partitionHealth) setState(s health.State, reason, action string) {
	if h.sink == nil {
		return
	}
	h.sink.Set(h.component, s, reason, action)
	h.raised = true
}

func (h *partitionHealth) clear() {
	if h.sink != nil && h.raised {
		h.sink.Clear(h.component)
		h.raised = false
	}
}

// reasonKeyChars bounds a key printed in a health reason.
const reasonKeyChars = 96

// reasonKey cuts a printed key (printable) for a health reason, which
// /healthz answers and the console shows at every poll: a key may be
// kilobytes long. The log line of the same condition has it whole.
func reasonKey(k string) string {
	if len(k) <= reasonKeyChars {
		return k
	}
	return fmt.Sprintf("%s… (%d characters; the resolver's error log has it whole)", k[:reasonKeyChars], len(k))
}
