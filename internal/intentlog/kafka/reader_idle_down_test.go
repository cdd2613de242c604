package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestIdleReaderBrokersDown: a reader released while its caller stopped
// asking, asked again while no broker answers, waits as a reader that
// kept its client waits in its fetch (until its context ends), rather
// than failing at once with the error of the client's making; once the
// brokers answer again it reads on at its position.
func TestIdleReaderBrokersDown(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var down atomic.Bool
	c.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if down.Load() {
			return nil, errors.New("down"), true
		}
		return nil, nil, false
	})
	ctx := testCtx(t, time.Minute)
	l := openLog(t, c.ListenAddrs(), func(o *Options) {
		o.ReaderIdle = 100 * time.Millisecond
		o.RequestTimeout = 500 * time.Millisecond
	})
	topic := "idledown"
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	put := func(from, n int) {
		t.Helper()
		batch := make([]*intentlog.Record, 0, n)
		for j := from; j < from+n; j++ {
			batch = append(batch, &intentlog.Record{Key: fmt.Appendf(nil, "k%d", j), Value: []byte("v")})
		}
		if err := l.Append(ctx, topic, batch); err != nil {
			t.Fatal(err)
		}
	}
	put(0, 10)
	rd, err := l.NewReader(topic, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for rd.Position() < 10 {
		if _, err := rd.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	put(10, 10)
	waitReleased(t, rd)
	down.Store(true)
	const wait = 3 * time.Second
	dctx, cancel := context.WithTimeout(ctx, wait)
	began := time.Now()
	recs, err := rd.Next(dctx)
	cancel()
	if took := time.Since(began); !errors.Is(err, context.DeadlineExceeded) || took < wait-100*time.Millisecond {
		t.Fatalf("Next of a released reader while the brokers are down = %d records, %v after %v; want it to wait for its context (%v)", len(recs), err, took, wait)
	}
	down.Store(false)
	recs, err = rd.Next(ctx)
	if err != nil || len(recs) == 0 || recs[0].Offset != 10 {
		t.Fatalf("Next once the brokers answer again = %s, %v; want records from offset 10", keysAt(recs), err)
	}
}
