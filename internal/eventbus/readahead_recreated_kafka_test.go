package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/kafka"
	"github.com/wail-cdc/wail/internal/readahead"
)

// TestDroppedReadOfARecreatedTopic: a stream's reader dropped a read
// (the process's read-ahead full) and, before it read it again, the
// event topic was deleted and created again, shorter than the dropped
// read's offset. The new reader must not take the new topic for the old
// one truncated (its leader epochs start again, its end is below the
// position): the stream fails with intentlog.ErrUnknownTopic, as a
// reader that kept its client does, rather than rewind to the new
// topic's end, which ends an until-end stream as if it had delivered
// every event up to its end.
func TestDroppedReadOfARecreatedTopic(t *testing.T) {
	t.Parallel()
	for _, untilEnd := range []bool{true, false} {
		t.Run(fmt.Sprint("untilEnd=", untilEnd), func(t *testing.T) {
			t.Parallel()
			const value = 8 << 10
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			l, err := kafka.Open(ctx, kafka.Options{Brokers: c.ListenAddrs(), ClientID: "wail-test", Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			bus := New(l)
			if err := bus.CreateTable(ctx, "t", 1, 0); err != nil {
				t.Fatal(err)
			}
			version := uint64(0)
			publish := func(n int) {
				for range n / 64 {
					var evs []intent.Event
					for range 64 {
						version++
						evs = append(evs, intent.Event{Table: "t", Key: fmt.Appendf(nil, "k%d", version), Op: intent.Upsert, Version: version, Value: make([]byte, value)})
					}
					if err := bus.Publish(ctx, "t", evs); err != nil {
						t.Fatal(err)
					}
				}
			}
			publish(384) // 3 MiB: three reads of 1 MiB
			pool := readahead.NewPool(1536 << 10)
			svc := NewService(bus, func(string) (int32, bool) { return 1, true }).WithLimits(Limits{BufferBytes: 8 << 20, Pool: pool})
			resume := make(chan struct{})
			got := 0
			errc := make(chan error, 1)
			go func() {
				errc <- svc.Stream(ctx, &wailv1.SubscribeRequest{Table: "t", From: "beginning", UntilEnd: untilEnd}, func() error { return nil },
					func(r *wailv1.SubscribeResponse) error {
						<-resume
						if r.Event != nil {
							got++
						}
						return nil
					})
			}()
			for deadline := time.Now().Add(20 * time.Second); pool.Drops() == 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the stream's reader dropped no read: the test does not fill the process's read-ahead")
				}
			}
			// Deleted and created again, shorter than the dropped read's
			// offset, before the stream reads it again.
			if err := l.DeleteTopic(ctx, Topic("t")); err != nil {
				t.Fatal(err)
			}
			for {
				err := l.CreateTopic(ctx, Topic("t"), 1, intentlog.TopicOptions{})
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					t.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			publish(64)
			close(resume)
			var serr error
			select {
			case serr = <-errc:
			case <-time.After(20 * time.Second):
				t.Fatalf("the stream neither failed nor ended 20 s after the topic was created again (%d events delivered)", got)
			}
			if !errors.Is(serr, intentlog.ErrUnknownTopic) {
				t.Fatalf("the stream ended with %v after %d events of the old topic's 384, want %v", serr, got, intentlog.ErrUnknownTopic)
			}
			t.Logf("%d events of the old topic, then: %v", got, serr)
		})
	}
}
