package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/kafka"
	"github.com/wail-cdc/wail/internal/readahead"
)

// TestMemberDroppedReadOfARecreatedTopic: a member's reader dropped a
// read (the process's read-ahead full) and, before it read it again, the
// topic was deleted and created again, shorter than the dropped read's
// offset. The new reader must not take the new topic for the old one
// truncated (which ends the member as one that lost events it was sent,
// told to reset the group): the member ends with
// intentlog.ErrUnknownTopic, as with a reader that kept its client.
func TestMemberDroppedReadOfARecreatedTopic(t *testing.T) {
	t.Parallel()
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
	if err := l.CreateTopic(ctx, "ev", 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 64<<10)
	appendN := func(n int) {
		for i := range n {
			if err := l.Append(ctx, "ev", []*intentlog.Record{{Key: fmt.Appendf(nil, "k%d", i), Value: value}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendN(48) // 3 MiB: three reads of 1 MiB
	pool := readahead.NewPool(1536 << 10)
	g := New(l, time.Minute).WithReadAhead(8<<20, pool)
	defer g.Close()
	s, err := g.Join(ctx, Table{Name: "t", Topic: "ev", Partitions: 1}, "g", "m", false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Leave()
	if m := next(t, s); m.Granted == nil {
		t.Fatalf("first message %+v, want the grant", m)
	}
	for deadline := time.Now().Add(20 * time.Second); pool.Drops() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the member's reader dropped no read: the test does not fill the process's read-ahead")
		}
	}
	if err := l.DeleteTopic(ctx, "ev"); err != nil {
		t.Fatal(err)
	}
	for {
		err := l.CreateTopic(ctx, "ev", 1, intentlog.TopicOptions{})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	appendN(4)
	got := 0
	for {
		nctx, ncancel := context.WithTimeout(ctx, 20*time.Second)
		m, err := s.Next(nctx)
		ncancel()
		if err != nil {
			if !errors.Is(err, intentlog.ErrUnknownTopic) {
				t.Fatalf("the member ended with %v after %d records of the old topic's 48, want %v", err, got, intentlog.ErrUnknownTopic)
			}
			t.Logf("%d records of the old topic, then: %v", got, err)
			return
		}
		got += len(m.Records)
	}
}
