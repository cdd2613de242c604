package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
)

// TestConsumerSnapshotEndPastLeaseServer is TestConsumerSnapshotEndRefused
// against a server: a member acknowledges its snapshot's last row past
// the group lease; the server aborted the snapshot and refuses the end's
// acknowledgement, another member waiting for the snapshot takes it and
// commits its end. The first member's Next fails with
// ErrSnapshotInterrupted (ConsumerConfig.Start), not joins again behind
// the other member's snapshot with its own rows kept.
func TestConsumerSnapshotEndPastLeaseServer(t *testing.T) {
	t.Parallel()
	const lease = 500 * time.Millisecond
	srv := startRestartable(t, func(c *config.Config) { c.API.GroupLeaseTimeout = lease })
	defer func() { srv.stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dialTable(ctx, t, srv, 1)
	if _, err := c.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("a"), Value: []byte(`{}`)})); err != nil {
		t.Fatal(err)
	}
	cfg := func(member string) client.ConsumerConfig {
		return client.ConsumerConfig{Table: "t", Group: "g", Member: member, Start: "snapshot",
			Reconnect: client.Reconnect{MinWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond}}
	}
	slow, err := client.NewConsumer(ctx, c.Events, cfg("slow"))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	row, err := slow.Next(ctx)
	if err != nil || !row.Snapshot {
		t.Fatalf("snapshot row: %v, %v", row, err)
	}
	// The other member waits for the snapshot, then takes it once the
	// first one's is aborted.
	other, err := client.NewConsumer(ctx, c.Events, cfg("other"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	octx, ocancel := context.WithCancel(ctx)
	defer ocancel()
	go func() {
		for {
			m, err := other.Next(octx)
			if err != nil {
				return
			}
			if err := other.Ack(octx, m); err != nil {
				return
			}
		}
	}()
	time.Sleep(lease + lease/2)
	if err := slow.Ack(ctx, row); err != nil {
		t.Fatalf("Ack of the row: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		g, err := c.Events.DescribeGroup(ctx, connect.NewRequest(&wailv1.DescribeGroupRequest{Table: "t", Group: "g"}))
		if err == nil && len(g.Msg.Partitions) > 0 && g.Msg.Partitions[0].Committed >= 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other member's snapshot end was not committed: %v", err)
		}
	}
	nctx, ncancel := context.WithTimeout(ctx, 3*time.Second)
	defer ncancel()
	var errs []error
	for range 3 {
		_, err = slow.Next(nctx)
		errs = append(errs, err)
		if !errors.Is(err, client.ErrAckRefused) { // the end's acknowledgement, refused
			break
		}
	}
	if !errors.Is(err, client.ErrSnapshotInterrupted) {
		t.Fatalf("Next of the member whose snapshot was aborted: %v, want ErrSnapshotInterrupted", errs)
	}
}
