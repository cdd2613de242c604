package eventbus

import (
	"context"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestUntilEndPastRetention: an until-end stream whose partition's
// retention passes the stream's end before it read there ends by itself
// (its reader restarts at the log's new start, past the end: the
// stream's position moves there). It waited for ever.
func TestUntilEndPastRetention(t *testing.T) {
	t.Parallel()
	st := newStreams(t, 1, Limits{})
	log, b := st.log, st.bus
	upserts(t, b, 1, 2, 3, 4, 5, 6) // offsets 0..5, end 6
	log.mu.Lock()
	log.onNewReader = func() { log.retain(Topic("t"), 0, 6) } // retention removes everything up to the end
	log.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := st.svc.Stream(ctx, &wailv1.SubscribeRequest{Table: "t", From: "beginning", UntilEnd: true},
		func() error { return nil }, func(*wailv1.SubscribeResponse) error { return nil }); err != nil || ctx.Err() != nil {
		t.Fatalf("the until-end stream ended with %v, context %v; want it to end by itself", err, ctx.Err())
	}
}
