package kafka

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// cancelOnPoll cancels the context it holds when a poll takes records
// from the client: the caller's deadline passing just as its poll
// returned them.
type cancelOnPoll struct {
	cancel atomic.Pointer[context.CancelFunc]
}

func (h *cancelOnPoll) OnFetchRecordUnbuffered(_ *kgo.Record, polled bool) {
	if !polled {
		return
	}
	if c := h.cancel.Swap(nil); c != nil {
		(*c)()
	}
}

// TestNextEndsAsItPolls: a Next whose context ends just as its poll took
// records from the reader's client (a per-call deadline, as the event
// bus's scan sets, that passes as the fetch lands) loses none of them: it
// returns them, or the next Next does. Its client had moved past them
// while Next returned the context's error with the position where it
// was: the next Nexts skipped them (returning the records after them),
// or, when nothing came after them, waited for ever at the position.
func TestNextEndsAsItPolls(t *testing.T) {
	hook := new(cancelOnPoll)
	l := openLog(t, fakeBrokers(t), func(o *Options) { o.ExtraClientOpts = []kgo.Opt{kgo.WithHooks(hook)} })
	ctx := testCtx(t, time.Minute)
	topic := "endsaspolls"
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	const n = 10
	batch := make([]*intentlog.Record, 0, n)
	for j := 0; j < n; j++ {
		batch = append(batch, &intentlog.Record{Key: fmt.Appendf(nil, "k%d", j), Value: []byte("v")})
	}
	if err := l.Append(ctx, topic, batch); err != nil {
		t.Fatal(err)
	}
	rd, err := l.NewReader(topic, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var got []intentlog.Record
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hook.cancel.Store(&cancel)
	recs, err := rd.Next(cctx)
	got = append(got, recs...)
	t.Logf("the Next whose context ended as it polled: %d records, %v", len(recs), err)
	for rd.Position() < n {
		nctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		recs, err := rd.Next(nctx)
		cancel()
		if err != nil {
			t.Fatalf("Next after the one whose context ended as it polled, at %d: %v (records taken by that poll were dropped)", rd.Position(), err)
		}
		got = append(got, recs...)
	}
	for i, r := range got {
		if r.Offset != int64(i) {
			t.Fatalf("read %s; want offsets 0 to %d, each once", keysAt(got), n-1)
		}
	}
}
