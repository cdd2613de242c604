package group

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/kafka"
	"github.com/wail-cdc/wail/internal/intentlog/kafka/kafkatest"
)

// kafkaRig is a Kafka log on a kfake cluster of n brokers with topic "ev"
// (one partition), and the count of OffsetForLeaderEpoch requests (the
// leader epochs validated).
type kafkaRig struct {
	c     *kfake.Cluster
	l     *kafka.Log
	tb    Table
	asked atomic.Int32
	// end >= 0: OffsetForLeaderEpoch answers that every epoch asked
	// about ends at end under epoch newEpoch, as the new leader of a log
	// that diverged there (an unclean leader election) does.
	end      atomic.Int64
	newEpoch atomic.Int32
	// undefined: OffsetForLeaderEpoch answers UNDEFINED_EPOCH_OFFSET (the
	// leader has no record of the epoch asked about).
	undefined atomic.Bool
	epochs    *kafkatest.EpochCache // of "ev", answered otherwise
	n         int
	// beforeLeave, when set, runs when consume's member is done, before
	// it leaves.
	beforeLeave func()
}

func newKafkaRig(t *testing.T, brokers int) *kafkaRig {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	r := &kafkaRig{c: c, epochs: kafkatest.NewEpochCache()}
	r.end.Store(-1)
	c.ControlKey(int16(kmsg.OffsetForLeaderEpoch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r.asked.Add(1)
		end, newEpoch := r.end.Load(), r.newEpoch.Load()
		if r.undefined.Load() {
			end, newEpoch = -1, -1 // UNDEFINED_EPOCH_OFFSET
		} else if end < 0 { // as Kafka answers (kafkatest.EpochCache)
			return r.epochs.Response(req.(*kmsg.OffsetForLeaderEpochRequest)), nil, true
		}
		q := req.(*kmsg.OffsetForLeaderEpochRequest)
		resp := q.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
		resp.Version = q.Version
		for _, rt := range q.Topics {
			st := kmsg.NewOffsetForLeaderEpochResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
				sp.Partition, sp.LeaderEpoch, sp.EndOffset = rp.Partition, newEpoch, end
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	l, err := kafka.Open(context.Background(), kafka.Options{Brokers: c.ListenAddrs(), ClientID: "wail-test", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	r.l = l
	if err := l.CreateTopic(context.Background(), "ev", 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	r.tb = Table{Name: "t", Topic: "ev", Partitions: 1}
	return r
}

// groups returns a maker of the groups of a process on r's log: unshared,
// or shared by the processes it makes (one store catalog).
func (r *kafkaRig) groups(shared bool) func(*slog.Logger) *Groups {
	cat := &memCatalog{m: map[string][]byte{}}
	n := 0
	return func(logger *slog.Logger) *Groups {
		if logger == nil {
			logger = slog.New(slog.DiscardHandler)
		}
		G := New(r.l, time.Minute).WithLogger(logger)
		if shared {
			n++
			G = G.Share(Sharing{Store: &memSwapper{c: cat}, Process: fmt.Sprintf("P%d", n), Lease: 5 * time.Second, Logger: logger})
		}
		return G
	}
}

// write appends k events.
func (r *kafkaRig) write(t *testing.T, k int) {
	t.Helper()
	var recs []*intentlog.Record
	for range k {
		recs = append(recs, &intentlog.Record{Key: []byte("k"), Value: fmt.Appendf(nil, "v%d", r.n)})
		r.n++
	}
	if err := r.l.Append(context.Background(), "ev", recs); err != nil {
		t.Fatal(err)
	}
	r.epochs.Appended(k)
}

// move moves the partition's leadership to the next broker (a new leader
// epoch, nothing lost).
func (r *kafkaRig) move(t *testing.T, brokers int32) {
	t.Helper()
	if err := r.c.MoveTopicPartition("ev", 0, (r.c.LeaderFor("ev", 0)+1)%brokers); err != nil {
		t.Fatal(err)
	}
	r.epochs.Moved()
}

// consume joins member id to group g of G, reads and acknowledges the
// events from the grant up to `to` (at most: one acknowledgement per
// batch, the last one up to `to`) and leaves; it returns the grant's
// offset and the first event read.
func (r *kafkaRig) consume(t *testing.T, G *Groups, id string, to int64) (grant, first int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := G.Join(ctx, r.tb, "g", id, false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r.beforeLeave != nil {
			r.beforeLeave()
		}
		s.Leave()
	}()
	first = -1
	m, err := s.Next(ctx)
	if err != nil || len(m.Granted) != 1 {
		t.Fatalf("%s: first message %+v, %v; want the grant", id, m, err)
	}
	grant = m.Granted[0].Offset
	for pos := grant; pos < to; {
		m, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("%s: reading from %d up to %d, at %d: %v", id, grant, to, pos, err)
		}
		if len(m.Records) == 0 || !s.Check(m) {
			continue
		}
		if first < 0 {
			first = m.Records[0].Offset
		}
		next := m.Next
		if next > to { // acknowledge up to `to` only
			next = to
		}
		if refused, err := G.Ack(ctx, r.tb, "g", id, []Ack{{Partition: 0, Epoch: m.Epoch, Next: next}}); err != nil || len(refused) > 0 {
			t.Fatalf("%s: ack %d: %v %v", id, next, refused, err)
		}
		pos = next
	}
	return grant, first
}

// TestGroupStartDivergedBelowCommitted: a member read events 0-4 under
// one leader epoch and acknowledged 5; while no member read the partition
// (the group had no members; the server restarted), an unclean leader
// election cut the log at 2 and new events took offsets 2 on (or, with
// handover, it happened before the member left, and the partition went to
// a member that had joined meanwhile). The group's
// offset was committed without a leader epoch: the next member started at
// 5 and silently passed the new events at 2-4. The commit now carries the
// epoch of the event before it, a member starting the partition validates
// it (KIP-320), and the divergence ends the member with ErrPositionLost
// naming where the log diverges, the committed offset and `wail group
// reset`, logged.
func TestGroupStartDivergedBelowCommitted(t *testing.T) {
	t.Parallel()
	type mode int
	const (
		rejoin mode = iota
		restart
		handover
	)
	for _, tc := range []struct {
		shared bool
		mode   mode
	}{{false, rejoin}, {false, restart}, {false, handover}, {true, rejoin}, {true, restart}, {true, handover}} {
		t.Run(fmt.Sprintf("shared=%v,mode=%d", tc.shared, tc.mode), func(t *testing.T) {
			t.Parallel()
			r := newKafkaRig(t, 1)
			r.write(t, 5)
			var logs bytes.Buffer
			var logMu sync.Mutex
			logger := slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, nil))
			newGroups := r.groups(tc.shared)
			G := newGroups(logger)
			defer G.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			diverge := func() {
				c, err := r.l.CommittedEpochs(ctx, LogGroup("g"), "ev")
				if err != nil {
					t.Error(err)
					return
				}
				if c[0].Offset != 5 || c[0].Epoch < 0 {
					t.Errorf("committed %+v; want offset 5 with the leader epoch of the event at 4", c[0])
				}
				// The unclean election: the epoch the events were read
				// under ends at 2; new events take offsets 2 on.
				r.newEpoch.Store(max(c[0].Epoch, 0) + 1)
				r.end.Store(2)
				r.write(t, 3)
			}
			var s *Session
			var err error
			if tc.mode == handover {
				r.beforeLeave = func() { // b joins while a holds the partition
					if s, err = G.Join(ctx, r.tb, "g", "b", false); err != nil {
						t.Error(err)
					}
					diverge()
				}
			}
			r.consume(t, G, "a", 5)
			if tc.mode != handover {
				diverge()
			}
			if tc.mode == restart {
				G.Close()
				G = newGroups(logger)
				defer G.Close()
			}
			if err != nil {
				t.FailNow()
			}
			if s == nil {
				if s, err = G.Join(ctx, r.tb, "g", "b", false); err != nil {
					t.Fatal(err)
				}
			}
			defer s.Leave()
			var got []int64
			for err == nil {
				var m Message
				if m, err = s.Next(ctx); err == nil {
					for _, rec := range m.Records {
						got = append(got, rec.Offset)
					}
				}
				if len(got) > 0 && ctx.Err() == nil {
					t.Fatalf("the member joined after the log diverged at 2 below the committed offset 5 read %v (the new events "+
						"at 2-4 silently skipped; OffsetForLeaderEpoch asked %d times); want ErrPositionLost", got, r.asked.Load())
				}
			}
			t.Logf("%v", err)
			if !errors.Is(err, ErrPositionLost) || !errors.Is(err, intentlog.ErrTruncated) {
				t.Fatalf("the member ended with %v; want ErrPositionLost, the truncation", err)
			}
			for _, want := range []string{"diverges from offset 2", "committed offset 5", "wail group reset"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the member's error %q does not say %q", err, want)
				}
			}
			logMu.Lock()
			l := logs.String()
			logMu.Unlock()
			if !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "diverges from offset 2") {
				t.Errorf("log %q; want the error", l)
			}
		})
	}
}

// TestGroupEpochsHealthyNoFalseAlarm: events written across leader
// changes (some without writes between them) on a cluster that lost
// nothing; members acknowledge a few events each, leave, and the next
// member (of this process or after a restart, with a leader change in
// between) starts at the committed offset and its epoch. The epochs are
// validated (OffsetForLeaderEpoch asked), and no start raises a false
// alarm: each reads on from the committed offset.
func TestGroupEpochsHealthyNoFalseAlarm(t *testing.T) {
	t.Parallel()
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			t.Parallel()
			testGroupEpochsHealthy(t, shared)
		})
	}
}

func testGroupEpochsHealthy(t *testing.T, shared bool) {
	r := newKafkaRig(t, 3)
	r.write(t, 3)
	r.move(t, 3)
	r.move(t, 3)
	r.write(t, 2)
	r.move(t, 3)
	r.write(t, 1)
	r.move(t, 3)
	r.write(t, 1)
	end := int64(r.n)
	newGroups := r.groups(shared)
	G := newGroups(nil)
	defer G.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	committed := int64(0)
	for i := 0; committed < end; i++ {
		if i%2 == 1 {
			G.Close()
			G = newGroups(nil)
			defer G.Close()
		}
		asked := r.asked.Load()
		grant, first := r.consume(t, G, fmt.Sprintf("m%d", i), min(committed+2, end))
		if grant != committed || first != committed {
			t.Fatalf("member %d: granted at %d, first event %d; want both at the committed offset %d", i, grant, first, committed)
		}
		if committed > 0 && r.asked.Load() == asked {
			t.Fatalf("member %d started at %d without its leader epoch validated", i, committed)
		}
		c, err := r.l.CommittedEpochs(ctx, LogGroup("g"), "ev")
		if err != nil {
			t.Fatal(err)
		}
		if c[0].Epoch < 0 {
			t.Fatalf("member %d committed %+v; want a leader epoch", i, c[0])
		}
		committed = c[0].Offset
		r.move(t, 3)
	}
	r.write(t, 1)
	if grant, first := r.consume(t, G, "last", end+1); grant != end || first != end {
		t.Fatalf("the last member: granted at %d, first event %d; want %d", grant, first, end)
	}
}

// TestGroupOffsetWithoutEpoch: an offset committed without a leader epoch
// (by a wail before epochs were committed, or before its resets, starts
// and snapshot ends carried them) starts its member unvalidated, as
// before: it reads on from the offset (a divergence below it is not seen;
// DESIGN.md).
func TestGroupOffsetWithoutEpoch(t *testing.T) {
	t.Parallel()
	r := newKafkaRig(t, 1)
	r.write(t, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.l.Commit(ctx, LogGroup("g"), "ev", map[int32]int64{0: 5}); err != nil {
		t.Fatal(err)
	}
	r.newEpoch.Store(1)
	r.end.Store(2) // any epoch asked about ends at 2
	G := r.groups(false)(nil)
	defer G.Close()
	if grant, first := r.consume(t, G, "a", 8); grant != 5 || first != 5 {
		t.Fatalf("granted at %d, first event %d; want both at the committed offset 5", grant, first)
	}
	if n := r.asked.Load(); n != 0 {
		t.Fatalf("OffsetForLeaderEpoch asked %d times for an offset committed without an epoch", n)
	}
}
