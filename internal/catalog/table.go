package catalog

// A table's definition (Table), its API form (Proto, FromProto) and the
// encoding of its catalog entry (encode, Decode).

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intentlog"
	"google.golang.org/protobuf/proto"
)

// FailureMode says what the proxy does when an intent cannot be logged.
type FailureMode uint8

// Failure modes. The values match wail.v1.FailureMode.
const (
	// Transactional rejects the mutation and leaves the store untouched.
	Transactional FailureMode = 1
	// Independent writes the store anyway and reports intent_logged=false.
	Independent FailureMode = 2
)

// ParseFailureMode parses "transactional" or "independent" ("" is
// transactional).
func ParseFailureMode(s string) (FailureMode, error) {
	switch s {
	case "", "transactional":
		return Transactional, nil
	case "independent":
		return Independent, nil
	}
	return 0, fmt.Errorf("%w: failure mode %q: use transactional or independent", ErrInvalid, s)
}

func (m FailureMode) String() string {
	switch m {
	case Transactional:
		return "transactional"
	case Independent:
		return "independent"
	}
	return fmt.Sprintf("failure mode %d", m)
}

// State is where a table is in its life. The values match
// wail.v1.TableState.
type State uint8

// States; see wail.v1.TableState.
const (
	Creating State = 1
	Ready    State = 2
	Dropping State = 3
	Deleting State = 4
)

func (s State) String() string {
	switch s {
	case Creating:
		return "creating"
	case Ready:
		return "ready"
	case Dropping:
		return "dropping"
	case Deleting:
		return "deleting"
	}
	return fmt.Sprintf("state %d", s)
}

// Table is a table definition.
type Table struct {
	Name             string
	FailureMode      FailureMode
	VisibilityWindow time.Duration
	Partitions       int32
	// MaxAttempts and MaxRetryTime bound the resolver's tries of a key's
	// store read or event publish before its intents are dead-lettered.
	MaxAttempts  int32
	MaxRetryTime time.Duration
	CreatedAt    time.Time
	State        State
	// KeyMessage and ValueMessage make a typed table: the Protobuf message
	// types of its keys and values, in the latest schemas of its subjects
	// in the schema registry (<event topic>-key, <event topic>-value).
	// Empty: opaque bytes. Set at create; not alterable.
	KeyMessage, ValueMessage string
	// SkipValidation: writes are not checked against the schemas.
	// Alterable.
	SkipValidation bool
	// WideWindow, until WideUntil, is a longer window an alter shortened:
	// writes admitted under it (by processes that had not seen the alter
	// yet, up to a Refresh after it) may land until then. Set by Alter;
	// zero: none.
	WideWindow time.Duration
	WideUntil  time.Time
	// NarrowWindow, until NarrowUntil, is a shorter window an alter
	// lengthened: resolvers that have not taken the longer one up yet
	// (up to SeenWithin plus a commit tick after it) give an intent up
	// once it passed, so every process makes its writes under it until
	// then (Catalog.WriteWindow), one that starts meanwhile included.
	// Set by Alter; zero: none.
	NarrowWindow time.Duration
	NarrowUntil  time.Time
	// TopicIDs, of a table being deleted on a log whose topics have ids
	// (Kafka), are the ids its topics had once it was marked deleting, by
	// topic (the topics then absent are not listed): every drop deletes
	// those (Provisioner.Unprovision), so that one that arrives late
	// leaves the topics of a table created again under the name since.
	// Nil: not read yet (or a log without ids). Set by a drop (remove);
	// a pointer, so that tables compare with ==, never changed once set.
	TopicIDs *TopicIDs
	// StorePin, of a table being deleted on a store whose drops are
	// pinned (store.PinnedDropper: Cassandra), is the store's pin of the
	// table's rows read once it was marked deleting (DropPin): every drop
	// drops with it (DropTablePinned), so that one that arrives late
	// leaves the rows of a table created again under the name since.
	// Empty: not read yet (or a store without pins). Set by a drop
	// (remove), never changed once set; a string, so that tables compare
	// with ==.
	StorePin string
}

// TopicIDs are the ids of topics, by topic.
type TopicIDs map[string]intentlog.TopicID

// SeenWithin is how long after a change of the catalog every process
// that takes writes has seen it, with refresh its catalog_refresh: a
// process whose copy is older refuses writes (Catalog.Fresh). Twice the
// refresh plus a second: one reload that fails is tolerated, and a reload
// may take a second (a short catalog_refresh must not refuse writes
// whenever a reload takes longer than it).
func SeenWithin(refresh time.Duration) time.Duration { return 2*refresh + seenSlack }

const seenSlack = time.Second

// Typed reports whether keys or values have a message type.
func (t Table) Typed() bool { return t.KeyMessage != "" || t.ValueMessage != "" }

// Retry bounds of tables that were defined without them.
const (
	DefaultMaxAttempts  = 10
	DefaultMaxRetryTime = time.Minute
)

// Proto returns the API form of the definition.
func (t Table) Proto() *wailv1.Table {
	return &wailv1.Table{
		Name:               t.Name,
		FailureMode:        wailv1.FailureMode(t.FailureMode),
		VisibilityWindowMs: t.VisibilityWindow.Milliseconds(),
		Partitions:         t.Partitions,
		CreatedAtUs:        t.CreatedAt.UnixMicro(),
		MaxAttempts:        t.MaxAttempts,
		MaxRetryTimeMs:     t.MaxRetryTime.Milliseconds(),
		State:              wailv1.TableState(t.State),
		KeyMessage:         t.KeyMessage,
		ValueMessage:       t.ValueMessage,
		SkipValidation:     t.SkipValidation,
		WideWindowMs:       t.WideWindow.Milliseconds(),
		WideUntilUs:        unixMicro(t.WideUntil),
		NarrowWindowMs:     t.NarrowWindow.Milliseconds(),
		NarrowUntilUs:      unixMicro(t.NarrowUntil),
		DeletingTopicIds:   topicIDsProto(t.TopicIDs),
		DeletingStorePin:   []byte(t.StorePin),
	}
}

// topicIDsProto is the saved form of ids, in topic order (an entry's
// bytes are compared by swaps).
func topicIDsProto(ids *TopicIDs) *wailv1.TopicIds {
	if ids == nil {
		return nil
	}
	p := &wailv1.TopicIds{}
	for _, topic := range slices.Sorted(maps.Keys(*ids)) {
		id := (*ids)[topic]
		p.Topics = append(p.Topics, &wailv1.TopicId{Topic: topic, Id: id[:]})
	}
	return p
}

// unixMicro is t in microseconds since the epoch, 0 for the zero time.
func unixMicro(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// FromProto converts the API form. A definition saved before states
// existed is ready; one saved before tables had retry bounds gets the
// defaults.
func FromProto(p *wailv1.Table) Table {
	t := Table{
		Name:             p.Name,
		FailureMode:      FailureMode(p.FailureMode),
		VisibilityWindow: time.Duration(p.VisibilityWindowMs) * time.Millisecond,
		Partitions:       p.Partitions,
		MaxAttempts:      p.MaxAttempts,
		MaxRetryTime:     time.Duration(p.MaxRetryTimeMs) * time.Millisecond,
		CreatedAt:        time.UnixMicro(p.CreatedAtUs),
		State:            State(p.State),
		KeyMessage:       p.KeyMessage,
		ValueMessage:     p.ValueMessage,
		SkipValidation:   p.SkipValidation,
		WideWindow:       time.Duration(p.WideWindowMs) * time.Millisecond,
		NarrowWindow:     time.Duration(p.NarrowWindowMs) * time.Millisecond,
		StorePin:         string(p.DeletingStorePin),
	}
	if p.WideUntilUs != 0 {
		t.WideUntil = time.UnixMicro(p.WideUntilUs)
	}
	if p.NarrowUntilUs != 0 {
		t.NarrowUntil = time.UnixMicro(p.NarrowUntilUs)
	}
	if ids := p.DeletingTopicIds; ids != nil {
		m := make(TopicIDs, len(ids.Topics))
		for _, tid := range ids.Topics {
			m[tid.Topic] = intentlog.TopicID(tid.Id)
		}
		t.TopicIDs = &m
	}
	if t.State == 0 {
		t.State = Ready
	}
	if t.MaxAttempts == 0 {
		t.MaxAttempts = DefaultMaxAttempts
	}
	if t.MaxRetryTime == 0 {
		t.MaxRetryTime = DefaultMaxRetryTime
	}
	return t
}

// Describe names the settings of a definition, for messages.
func (t Table) Describe() string {
	typed := ""
	if t.Typed() {
		typed = fmt.Sprintf(", key %s, value %s, validation %s", orBytes(t.KeyMessage), orBytes(t.ValueMessage), map[bool]string{false: "on", true: "off"}[t.SkipValidation])
	}
	return fmt.Sprintf("%s (failure mode %s, window %s, %d partitions, max attempts %d, max retry time %s%s)",
		t.Name, t.FailureMode, short(t.VisibilityWindow), t.Partitions, t.MaxAttempts, short(t.MaxRetryTime), typed)
}

func orBytes(message string) string {
	if message == "" {
		return "bytes"
	}
	return message
}

// sameDefinition compares what a create asks for (not the creation time or
// the state).
func (t Table) sameDefinition(o Table) bool {
	return t.Name == o.Name && t.FailureMode == o.FailureMode && t.VisibilityWindow == o.VisibilityWindow &&
		t.Partitions == o.Partitions && t.MaxAttempts == o.MaxAttempts && t.MaxRetryTime == o.MaxRetryTime &&
		t.KeyMessage == o.KeyMessage && t.ValueMessage == o.ValueMessage && t.SkipValidation == o.SkipValidation
}

// encode is the catalog entry of a definition (deterministic bytes, since
// swaps compare them).
func (t Table) encode() ([]byte, error) { return t.encodeOver(nil) }

// encodeOver is encode of a definition that replaces the entry old (nil:
// none), keeping the fields of old this version does not know: a newer
// wail sharing the store saved them, and it counts on them.
func (t Table) encodeOver(old []byte) ([]byte, error) {
	p := t.Proto()
	var o wailv1.Table
	if old != nil && proto.Unmarshal(old, &o) == nil {
		p.ProtoReflect().SetUnknown(o.ProtoReflect().GetUnknown())
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(p)
}

// Decode reads a catalog entry (store.Table.Spec).
func Decode(spec []byte) (Table, error) { return decode(spec) }

func decode(spec []byte) (Table, error) {
	var p wailv1.Table
	if err := proto.Unmarshal(spec, &p); err != nil {
		return Table{}, err
	}
	// What no create writes (Validate bounds every field): a count the
	// processes would size topics and per-partition state by, or
	// milliseconds that wrap around as a time.Duration.
	if p.State < 0 || State(p.State) > Deleting {
		// A newer wail's: what the table takes there is unknown here,
		// so it is neither served nor changed (a drop without force
		// skipped the check of its intents and writes).
		return Table{}, fmt.Errorf("state %d is unknown to this version (saved by a newer wail?)", p.State)
	}
	if p.Partitions < 1 || p.Partitions > HardMaxTablePartitions {
		return Table{}, fmt.Errorf("%d partitions, out of range 1..%d", p.Partitions, HardMaxTablePartitions)
	}
	for _, d := range []struct {
		field string
		ms    int64
	}{{"visibility_window_ms", p.VisibilityWindowMs}, {"max_retry_time_ms", p.MaxRetryTimeMs}, {"wide_window_ms", p.WideWindowMs}, {"narrow_window_ms", p.NarrowWindowMs}} {
		if d.ms < 0 || d.ms > math.MaxInt64/int64(time.Millisecond) {
			return Table{}, fmt.Errorf("%s %d out of range", d.field, d.ms)
		}
	}
	if ids := p.DeletingTopicIds; ids != nil {
		for _, tid := range ids.Topics {
			if len(tid.Id) != len(intentlog.TopicID{}) {
				return Table{}, fmt.Errorf("topic id of %q: %d bytes, want %d", tid.Topic, len(tid.Id), len(intentlog.TopicID{}))
			}
		}
	}
	return FromProto(&p), nil
}
