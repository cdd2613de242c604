package eventbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
)

// TestSnapshotGroup: a group's snapshot hands deliver each batch of the
// stream that carries events (a single event or a batch; never an empty
// one: a cursor alone is no batch), counts them as the snapshot's
// progress, and commits the stream's first cursor as the group's
// positions; a stream that fails, ends early, or whose cursor is bad, a
// deliver that fails and a context that ends commit nothing (and once it
// ended, deliver is not called: the claim may be another process's); a
// group with positions is not taken again.
func TestSnapshotGroup(t *testing.T) {
	t.Parallel()
	ev := func(v uint64) *wailv1.ChangeEvent { return &wailv1.ChangeEvent{Key: []byte("k"), Version: v} }
	// The log's ends (groupService: both events of key k are in
	// partition 0): a snapshot's end is never past them, and the
	// embedded log refuses a commit past them.
	end := Cursor{Table: "t", Offsets: []int64{2, 0}}.String()
	broken := errors.New("broken")
	for _, tc := range []struct {
		name      string
		msgs      []*wailv1.SubscribeResponse
		streamErr error // what the stream returns after msgs
		cancel    bool  // the stream's context ends after msgs
		cancelled bool  // the stream's context ends before msgs
		deliver   error
		positions bool // the group has positions before
		wantErr   string
		want      string // the batches delivered, by versions
	}{
		{name: "events then the cursor", msgs: []*wailv1.SubscribeResponse{
			{Event: ev(1), Partition: 1, Offset: 0, Snapshot: true},
			{Cursor: ""}, // headers and cursors alone carry no batch
			{Events: []*wailv1.StreamedEvent{{Event: ev(2)}, {Event: ev(3)}}},
			{Cursor: end},
			{Event: ev(9)}, // after the snapshot's end: never read
		}, want: "[[1] [2 3]]"},
		{name: "the stream ends early", msgs: []*wailv1.SubscribeResponse{{Event: ev(1)}}, want: "[[1]]", wantErr: "ended before the snapshot was over"},
		{name: "the stream fails", msgs: []*wailv1.SubscribeResponse{{Event: ev(1)}}, streamErr: broken, want: "[[1]]", wantErr: "snapshot: broken"},
		{name: "deliver fails", msgs: []*wailv1.SubscribeResponse{{Event: ev(1)}, {Cursor: end}}, deliver: broken, want: "[[1]]", wantErr: "snapshot: broken"},
		{name: "a bad cursor", msgs: []*wailv1.SubscribeResponse{{Event: ev(1)}, {Cursor: Cursor{Table: "other", Offsets: []int64{1, 2}}.String()}},
			want: "[[1]]", wantErr: "snapshot: "},
		{name: "the context ends", msgs: []*wailv1.SubscribeResponse{{Event: ev(1)}}, cancel: true, want: "[[1]]", wantErr: context.Canceled.Error()},
		{name: "the context ended before a batch", cancelled: true, msgs: []*wailv1.SubscribeResponse{{Event: ev(1)}, {Cursor: end}},
			want: "[]", wantErr: context.Canceled.Error()},
		{name: "a group with positions", positions: true, msgs: []*wailv1.SubscribeResponse{{Event: ev(1)}, {Cursor: end}}, want: "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			svc, _ := groupService(t)
			gt := group.Table{Name: "t", Topic: Topic("t"), Partitions: 2}
			if tc.positions {
				if _, err := svc.ResetGroup(t.Context(), "t", "g", "beginning"); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			stream := func(ctx context.Context, req *wailv1.SubscribeRequest, started func() error, send func(*wailv1.SubscribeResponse) error) error {
				if req.Table != "t" || req.From != "snapshot" || req.MaxBatchEvents != 7 {
					return fmt.Errorf("asked %v", req)
				}
				if err := started(); err != nil {
					return err
				}
				if tc.cancelled {
					cancel()
				}
				for _, m := range tc.msgs {
					if err := send(m); err != nil {
						return err
					}
				}
				if tc.cancel {
					cancel()
				}
				return tc.streamErr
			}
			var batches [][]uint64
			counted := int64(0) // the events of the batches before
			taken, err := SnapshotGroup(ctx, stream, svc.groups, gt, "g", "m1", 7, func(_ context.Context, evs []*wailv1.StreamedEvent) error {
				if member, sent, err := svc.groups.SnapshotProgress(t.Context(), gt, "g"); err != nil || member != "m1" || sent != counted {
					t.Errorf("progress %q, %d, %v; want m1 after %d events", member, sent, err, counted)
				}
				counted += int64(len(evs))
				var vs []uint64
				for _, e := range evs {
					vs = append(vs, e.Event.Version)
				}
				batches = append(batches, vs)
				return tc.deliver
			}, nil)
			if got := fmt.Sprint(batches); got != tc.want {
				t.Errorf("delivered %s, want %s", got, tc.want)
			}
			if tc.wantErr == "" != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err %v, want %q", err, tc.wantErr)
			}
			if taken != (tc.wantErr == "" && !tc.positions) {
				t.Errorf("taken %v", taken)
			}
			d, err := svc.DescribeGroup(t.Context(), "t", "g")
			switch {
			case tc.positions:
				if err != nil || d.Partitions[0].Committed != 0 || d.Partitions[1].Committed != 0 {
					t.Errorf("the reset's positions became %+v, %v", d, err)
				}
			case tc.wantErr == "":
				if err != nil || d.Partitions[0].Committed != 2 || d.Partitions[1].Committed != 0 {
					t.Errorf("positions %+v, %v; want the cursor's (2, 0)", d, err)
				}
			default:
				if !errors.Is(err, ErrNotFound) {
					t.Errorf("a snapshot that did not end left %+v, %v; want no positions", d, err)
				}
			}
		})
	}
}
