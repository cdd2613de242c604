package eventbus

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// stableMem is a hangMem with a stable offset (Kafka's last stable
// offset) that the test sets.
type stableMem struct {
	*hangMem
	stable    int64
	stableErr error
}

func (l *stableMem) StableEnd(ctx context.Context, topic string, partition int32) (stable, end int64, err error) {
	if l.stableErr != nil {
		return 0, 0, l.stableErr
	}
	_, end, err = l.Bounds(ctx, topic, partition)
	return l.stable, end, err
}

// TestHanging: Hanging asks the log about hanging transactions only when
// the partition's stable offset is below its end, from that offset, and
// reports one only when the log finds it; a log without a stable offset
// (embedded) never has one.
func TestHanging(t *testing.T) {
	ctx := context.Background()
	hung := &intentlog.Hanging{Records: []intentlog.Record{{Key: []byte("h"), Offset: 0}}}
	ended := &intentlog.Hanging{} // its marker came while the log read past it
	failed := errors.New("broker unreachable")
	for _, tc := range []struct {
		name      string
		stable    int64 // the partition holds 2 events: its end is 2
		stableErr error
		hanging   *intentlog.Hanging
		noStable  bool
		want      bool
		wantErr   error
		asked     []int64
	}{
		{name: "no stable offset (embedded)", noStable: true, hanging: hung},
		{name: "stable at the end", stable: 2, hanging: hung},
		{name: "held, nothing hanging (a transaction in flight)", stable: 1, asked: []int64{1}},
		{name: "held by a hanging transaction", stable: 0, hanging: hung, want: true, asked: []int64{0}},
		{name: "a hang that ended while the log read past it", stable: 0, hanging: ended, asked: []int64{0}},
		{name: "stable offset unknown", stableErr: failed, hanging: hung, wantErr: failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hm := &hangMem{memLog: newMemLog(), hanging: tc.hanging}
			var log intentlog.Log = &stableMem{hangMem: hm, stable: tc.stable, stableErr: tc.stableErr}
			if _, ok := log.(stabler); !ok {
				t.Fatal("stableMem is not a stabler: the test would not ask for a stable offset")
			}
			if tc.noStable {
				log = hm
			}
			b := abBus(t, log)
			got, err := b.Hanging(ctx, "t", 0)
			if got != tc.want || !errors.Is(err, tc.wantErr) {
				t.Errorf("Hanging = %v, %v; want %v, %v", got, err, tc.want, tc.wantErr)
			}
			if q := hm.questions(); !slices.Equal(q, tc.asked) {
				t.Errorf("Unhang asked from %v; want %v", q, tc.asked)
			}
		})
	}
}
