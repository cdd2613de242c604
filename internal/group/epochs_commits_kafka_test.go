package group

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestGroupCommitsWithoutReaderCarryEpochs: the offsets a group commits
// without a member's reader (a reset, which `wail group reset` and a
// "latest" sink's start go through; a snapshot's end; a new group's start
// at "latest", committed by the load or, shared, by the grant) carry the
// leader epoch of the event before them, read from the log. Before, they
// carried none: after a divergence below them (an unclean leader election
// cut the log at 2 below the offset 5 while no member read it, new events
// took offsets 2 on) the next member started unvalidated at 5 and silently
// passed the new events at 2-4. Now it ends with ErrPositionLost.
func TestGroupCommitsWithoutReaderCarryEpochs(t *testing.T) {
	t.Parallel()
	paths := map[string]func(ctx context.Context, t *testing.T, G *Groups, r *kafkaRig){
		"reset": func(ctx context.Context, t *testing.T, G *Groups, r *kafkaRig) {
			if err := G.Reset(ctx, r.tb, "g", map[int32]int64{0: 5}); err != nil {
				t.Fatal(err)
			}
		},
		"snapshot end": func(ctx context.Context, t *testing.T, G *Groups, r *kafkaRig) {
			taken, err := G.Snapshot(ctx, r.tb, "g", "s", func(ctx context.Context, run *SnapshotRun) error {
				return run.Commit(ctx, map[int32]int64{0: 5})
			})
			if err != nil || !taken {
				t.Fatalf("snapshot: taken %v, %v", taken, err)
			}
		},
		"start latest": func(ctx context.Context, t *testing.T, G *Groups, r *kafkaRig) {
			s, err := G.Join(ctx, r.tb, "g", "a", true)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Leave()
			if m, err := s.Next(ctx); err != nil || len(m.Granted) != 1 || m.Granted[0].Offset != 5 {
				t.Fatalf("first message %+v, %v; want the grant at 5", m, err)
			}
		},
	}
	for name, commit := range paths {
		for _, shared := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s,shared=%v", name, shared), func(t *testing.T) {
				t.Parallel()
				r := newKafkaRig(t, 1)
				r.write(t, 5)
				G := r.groups(shared)(nil)
				defer G.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				commit(ctx, t, G, r)
				c, err := r.l.CommittedEpochs(ctx, LogGroup("g"), "ev")
				if err != nil {
					t.Fatal(err)
				}
				if c[0].Offset != 5 || c[0].Epoch < 0 {
					t.Errorf("committed %+v; want offset 5 with the leader epoch of the event at 4", c[0])
				}
				r.newEpoch.Store(max(c[0].Epoch, 0) + 1)
				r.end.Store(2)
				r.write(t, 3)
				s, err := G.Join(ctx, r.tb, "g", "b", false)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Leave()
				got, err := firstOffsets(ctx, s)
				if len(got) > 0 {
					t.Fatalf("the member joined after the log diverged at 2 below the offset 5 committed by the %s read %v "+
						"(the new events at 2-4 silently skipped; OffsetForLeaderEpoch asked %d times); want ErrPositionLost", name, got, r.asked.Load())
				}
				if !errors.Is(err, ErrPositionLost) || !errors.Is(err, intentlog.ErrTruncated) || !strings.Contains(err.Error(), "diverges from offset 2") {
					t.Fatalf("the member ended with %v; want ErrPositionLost, the truncation at 2", err)
				}
			})
		}
	}
}

// TestGroupStartEpochUnknown: a member acknowledged 5 (committed with the
// leader epoch of the event at 4); when the next member starts the
// partition, its leader has no record of that epoch (OffsetForLeaderEpoch
// answers UNDEFINED_EPOCH_OFFSET: its leader-epoch history was lost, or
// the topic is another one of that name), so the log below the committed
// offset cannot be validated. franz-go keeps the offset then: the member
// read on from 5, as if validated, passing whatever new events took the
// offsets below it. It now ends with ErrPositionLost naming the epoch and
// `wail group reset`.
func TestGroupStartEpochUnknown(t *testing.T) {
	t.Parallel()
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			t.Parallel()
			r := newKafkaRig(t, 1)
			r.write(t, 5)
			G := r.groups(shared)(nil)
			defer G.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r.consume(t, G, "a", 5)
			r.undefined.Store(true)
			r.write(t, 3)
			s, err := G.Join(ctx, r.tb, "g", "b", false)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Leave()
			got, err := firstOffsets(ctx, s)
			if len(got) > 0 {
				t.Fatalf("the member started at 5, whose leader epoch the broker does not know, read %v (OffsetForLeaderEpoch asked %d times); "+
					"want ErrPositionLost", got, r.asked.Load())
			}
			t.Logf("%v", err)
			if !errors.Is(err, ErrPositionLost) || !errors.Is(err, intentlog.ErrEpochUnknown) {
				t.Fatalf("the member ended with %v; want ErrPositionLost, the epoch unknown", err)
			}
			for _, want := range []string{"committed offset 5", "wail group reset"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the member's error %q does not say %q", err, want)
				}
			}
		})
	}
}

// firstOffsets returns the offsets of the first message of s with
// records, or the error that ended it first.
func firstOffsets(ctx context.Context, s *Session) ([]int64, error) {
	for {
		m, err := s.Next(ctx)
		if err != nil {
			return nil, err
		}
		var got []int64
		for _, rec := range m.Records {
			got = append(got, rec.Offset)
		}
		if len(got) > 0 {
			return got, nil
		}
	}
}
