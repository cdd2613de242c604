package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// snapshotAckEnv starts a server with the given group lease and a table
// "s" of 20 rows, and returns its event client.
func snapshotAckEnv(ctx context.Context, t *testing.T, lease time.Duration) wailv1connect.EventServiceClient {
	t.Helper()
	url := servertest.Start(t, func(c *config.Config) { c.API.GroupLeaseTimeout = lease })
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
	prod := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "s", Partitions: 2})); err != nil {
		t.Fatal(err)
	}
	var muts []*wailv1.Mutation
	for i := range snapshotAckRows {
		muts = append(muts, &wailv1.Mutation{Table: "s", Key: fmt.Appendf(nil, "k%02d", i), Op: wailv1.Op_OP_UPSERT, Value: []byte("v")})
	}
	if _, err := prod.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: muts})); err != nil {
		t.Fatal(err)
	}
	return wailv1connect.NewEventServiceClient(http.DefaultClient, url)
}

const snapshotAckRows = 20

// hasPositions says whether group g of table s has committed positions.
func hasPositions(ctx context.Context, t *testing.T, events wailv1connect.EventServiceClient) bool {
	t.Helper()
	d, err := events.DescribeGroup(ctx, connect.NewRequest(&wailv1.DescribeGroupRequest{Table: "s", Group: "g"}))
	if err != nil {
		if connect.CodeOf(err) == connect.CodeNotFound {
			return false
		}
		t.Fatal(err)
	}
	for _, p := range d.Msg.Partitions {
		if p.Committed >= 0 {
			return true
		}
	}
	return false
}

// snapshotMember joins group g of s as member from "snapshot" and reads
// every row of the snapshot, acknowledging the first ack of them.
func snapshotMember(ctx context.Context, t *testing.T, events wailv1connect.EventServiceClient, member string, ack int) *client.Consumer {
	t.Helper()
	c, err := client.NewConsumer(ctx, events, client.ConsumerConfig{Table: "s", Group: "g", Member: member, Start: "snapshot"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if n, err := readSnapshot(ctx, c, ack); err != nil {
		t.Fatalf("member %s got %d rows of %d: %v", member, n, snapshotAckRows, err)
	}
	return c
}

// readSnapshot reads a member's snapshot rows, acknowledging the first
// ack of them, and returns how many it read: all of them, unless the
// stream ends first (err).
func readSnapshot(ctx context.Context, c *client.Consumer, ack int) (int, error) {
	for n := 0; n < snapshotAckRows; n++ {
		m, err := c.Next(ctx)
		if err != nil {
			return n, err
		}
		if !m.Snapshot {
			return n, fmt.Errorf("row %d: an event not of the snapshot: %v", n, m)
		}
		if n < ack {
			if err := c.Ack(ctx, m); err != nil {
				return n, err
			}
		}
	}
	return snapshotAckRows, nil
}

// TestGroupSnapshotEndAcknowledged: a group's snapshot end is committed
// only once the member that took it acknowledged every row. A member that
// received the whole snapshot, processed (acknowledged) 1 row of 20 and
// died leaves the group without positions, and the next member gets
// every row again; before, the end was committed once the rows were sent
// and the next member got none of them (the 19 rows were lost to the
// group).
func TestGroupSnapshotEndAcknowledged(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events := snapshotAckEnv(ctx, t, 2*time.Second)
	a := snapshotMember(ctx, t, events, "a", 1)
	// Every row reached a; 19 are not processed. The group must not have
	// positions yet, however long the server had to commit them.
	for range 10 {
		if hasPositions(ctx, t, events) {
			t.Fatal("the snapshot's end was committed though its member acknowledged 1 row of 20")
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.Close()                                                 // a dies with 19 rows unprocessed
	b := snapshotMember(ctx, t, events, "b", snapshotAckRows) // takes it again
	// b acknowledged them all and reads on (the snapshot's end comes
	// after the last row): the end is committed, b joins.
	go func() {
		for {
			if _, err := b.Next(ctx); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !hasPositions(ctx, t, events) {
		if time.Now().After(deadline) {
			t.Fatal("the snapshot's end was not committed once every row was acknowledged")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGroupSnapshotEndNeverAcknowledged: a member that never acknowledges
// its snapshot rows holds the group for at most the group lease: then its
// stream ends (aborted: the client's ErrSnapshotInterrupted), nothing is
// committed, and the next member takes the snapshot again.
func TestGroupSnapshotEndNeverAcknowledged(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events := snapshotAckEnv(ctx, t, 2*time.Second)
	a := snapshotMember(ctx, t, events, "a", 0)
	start := time.Now()
	_, err := a.Next(ctx)
	if !errors.Is(err, client.ErrSnapshotInterrupted) || connect.CodeOf(err) != connect.CodeAborted {
		t.Fatalf("a member that acknowledged no row: %v; want ErrSnapshotInterrupted (aborted)", err)
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Fatalf("the stream ended after %s; want about the group lease (2s)", waited)
	}
	if hasPositions(ctx, t, events) {
		t.Fatal("the snapshot's end was committed though no row was acknowledged")
	}
	snapshotMember(ctx, t, events, "b", snapshotAckRows) // takes it again
}

// TestGroupSnapshotOldClient: a member that does not ask to acknowledge
// the snapshot (ack_snapshot unset: clients before it) keeps the old
// behaviour: the end is committed once every row was sent, and the join
// follows.
func TestGroupSnapshotOldClient(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events := snapshotAckEnv(ctx, t, 2*time.Second)
	s, err := events.Consume(ctx, connect.NewRequest(&wailv1.ConsumeRequest{Table: "s", Group: "g", Member: "old", Start: "snapshot"}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows := 0
	for s.Receive() {
		m := s.Msg()
		switch {
		case m.SnapshotEnd:
			t.Fatal("a snapshot end to acknowledge, sent to a member that did not ask for it")
		case m.Event != nil && m.Snapshot:
			rows++
		case m.Event == nil && len(m.Granted) == 0 && len(m.Revoked) == 0 && rows > 0:
			if rows != snapshotAckRows {
				t.Fatalf("joined after %d rows; want %d", rows, snapshotAckRows)
			}
			if !hasPositions(ctx, t, events) {
				t.Fatal("joined, but the group has no positions")
			}
			return
		}
	}
	t.Fatalf("the stream ended after %d rows: %v", rows, s.Err())
}

// TestAckSnapshotEndRefused: an acknowledgement of a snapshot's end that
// no snapshot waits for is refused (failed_precondition, saying to
// consume again), and one that also carries partition acknowledgements is
// invalid.
func TestAckSnapshotEndRefused(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events := snapshotAckEnv(ctx, t, 2*time.Second)
	for _, tc := range []struct {
		name string
		req  *wailv1.AckRequest
		code connect.Code
		want string
	}{
		{"no snapshot", &wailv1.AckRequest{Table: "s", Group: "g", Member: "m", SnapshotEnd: true}, connect.CodeFailedPrecondition, "consume again"},
		{"unknown group name", &wailv1.AckRequest{Table: "s", Group: "never-used", Member: "m", SnapshotEnd: true}, connect.CodeFailedPrecondition, "no snapshot"},
		{"with partitions", &wailv1.AckRequest{Table: "s", Group: "g", Member: "m", SnapshotEnd: true,
			Acks: []*wailv1.PartitionAck{{Partition: 0, Epoch: 1, Next: 1}}}, connect.CodeInvalidArgument, "another request"},
		{"unknown table", &wailv1.AckRequest{Table: "nope", Group: "g", Member: "m", SnapshotEnd: true}, connect.CodeNotFound, "nope"},
	} {
		_, err := events.Ack(ctx, connect.NewRequest(tc.req))
		if connect.CodeOf(err) != tc.code || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %s saying %q", tc.name, err, tc.code, tc.want)
		}
	}
}
