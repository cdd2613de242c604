package e2etest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/intent"
)

// snapDelivery is what a member of a start "snapshot" group received on
// one of its connections (conn counts them per member).
type snapDelivery struct {
	member   string
	conn     int
	proc     int
	at       time.Time
	snapshot bool
	p        int32
	off      int64
	key      string
	version  uint64
	delete   bool
}

// TestGroupSnapshotAcrossProcesses: two `wail serve` processes share a
// PostgreSQL store and Kafka; a group starts from "snapshot" with a member
// on each process at once, while writers put and delete. Exactly one
// process takes the snapshot (the other's member waits: it receives no
// snapshot row, and its process's DescribeGroup shows the taker and its
// progress from the group's entry). The taking process is killed with
// SIGKILL mid-snapshot (rows of 16 KiB read slowly, so it is far from
// done); after its lease, the other process takes the snapshot again
// from the start and commits its end. Only the killed process's run began
// before the kill, and the runs after it never overlap in time; the
// completed one has every row; per connection and key versions
// increase; every event on the bus from the committed snapshot end on is
// delivered; and what the group received (the completed snapshot and the
// stream) ends at the bus's last event of every key. Without the shared
// claim both processes take the snapshot at once (the test fails there).
func TestGroupSnapshotAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wail binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const parts, rows = 4, 400
	d := startShared(t, ctx, "xs_", 2, parts, "")
	tbl := d.table

	// The rows the snapshot must deliver: large, and never written again.
	static := map[string]uint64{}
	pad := strings.Repeat("x", 16<<10)
	for i := 0; i < rows; i += 50 {
		var muts []*wailv1.Mutation
		for j := i; j < i+50; j++ {
			muts = append(muts, &wailv1.Mutation{Table: tbl, Key: fmt.Appendf(nil, "s-%d", j), Value: []byte(pad)})
		}
		for j, v := range d.write(t, ctx, 1, muts) {
			static[fmt.Sprintf("s-%d", i+j)] = v
		}
	}

	var dead [2]atomic.Bool
	var slow atomic.Bool
	slow.Store(true)
	var mu sync.Mutex
	var got []snapDelivery
	var grants []delivery // the partitions' start offsets each membership was given
	conns := map[string]int{}
	mctx, stopMembers := context.WithCancel(ctx)
	var members sync.WaitGroup
	for i, id := range []string{"m1", "m2"} {
		members.Go(func() {
			d.reconnect(mctx, i, dead[:], func(url string, proc int) {
				mu.Lock()
				conns[id]++
				conn := conns[id]
				mu.Unlock()
				consumeSnapshot(mctx, url, tbl, id, conn, proc, &slow, &mu, &got, &grants)
			})
		})
	}
	w := &remoteWriters{table: tbl}
	stopWriters := w.start(ctx, d.url(1), 3)
	snapRows := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		n := map[string]int{}
		for _, d := range got {
			if d.snapshot {
				n[fmt.Sprintf("%s/%d/%d", d.member, d.conn, d.proc)]++
			}
		}
		return n
	}
	waitFor(t, "a member mid-snapshot", func() bool {
		for _, n := range snapRows() {
			if n >= 40 {
				return true
			}
		}
		return false
	})
	runs := snapRows()
	if len(runs) != 1 {
		t.Fatalf("snapshot rows went to %v: two processes took the group's snapshot at once", runs)
	}
	var taker string
	var takerProc int
	for r := range runs {
		taker = r
		fmt.Sscanf(r[strings.LastIndexByte(r, '/')+1:], "%d", &takerProc)
	}
	// The other process describes the taker's snapshot from the entry.
	other := wailv1connect.NewEventServiceClient(http.DefaultClient, d.url(1-takerProc))
	var desc *wailv1.DescribeGroupResponse
	waitFor(t, "the other process's view of the snapshot", func() bool {
		r, err := other.DescribeGroup(ctx, connect.NewRequest(&wailv1.DescribeGroupRequest{Table: tbl, Group: "g"}))
		if err != nil {
			return false
		}
		desc = r.Msg
		return desc.SnapshotEvents > 0
	})
	if !strings.HasPrefix(taker, desc.SnapshotMember+"/") || len(desc.Partitions) != 0 {
		t.Fatalf("process %d describes snapshot member %q (%d rows), partitions %v; want %s's, no positions", 1-takerProc, desc.SnapshotMember,
			desc.SnapshotEvents, desc.Partitions, taker)
	}
	w.progress(t, "before the kill")
	atKill := snapRows()[taker]
	if atKill >= rows || len(snapRows()) != 1 {
		t.Fatalf("at the kill: snapshot rows %v (taker %s), %d static rows: not mid-snapshot by one taker", snapRows(), taker, rows)
	}
	dead[takerProc].Store(true)
	d.procs[takerProc].kill(t)
	killedAt := time.Now()
	survivor := d.url(1 - takerProc)
	w.url.Store(&survivor)
	slow.Store(false)
	t.Logf("process %d killed after %s received %d of %d+ rows (its process had sent %d)", takerProc, taker, atKill, rows, desc.SnapshotEvents)

	streamed := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, d := range got {
			if !d.snapshot && d.at.After(killedAt) {
				n++
			}
		}
		return n
	}
	waitFor(t, "events streamed after the snapshot taken again", func() bool { return streamed() >= 100 })
	w.progress(t, "after the snapshot")
	stopWriters()
	events := d.events(t, ctx)

	mu.Lock()
	minGrant := map[int32]int64{}
	for _, g := range grants {
		if o, ok := minGrant[g.p]; !ok || g.off < o {
			minGrant[g.p] = g.off
		}
	}
	mu.Unlock()
	if len(minGrant) != parts {
		t.Fatalf("grants %v: not every partition was given", minGrant)
	}
	missing := func() []Event {
		mu.Lock()
		defer mu.Unlock()
		seen := map[[2]int64]bool{}
		for _, d := range got {
			if !d.snapshot {
				seen[[2]int64{int64(d.p), d.off}] = true
			}
		}
		var out []Event
		for _, e := range events {
			if e.Offset >= minGrant[e.Partition] && !seen[[2]int64{int64(e.Partition), e.Offset}] {
				out = append(out, e)
			}
		}
		return out
	}
	waitFor(t, "delivery of every event from the snapshot's end on", func() bool { return len(missing()) == 0 })
	stopMembers()
	members.Wait()
	d.procs[1-takerProc].terminate(t)

	mu.Lock()
	defer mu.Unlock()
	checkSnapshotRuns(t, got, static, killedAt, events)
}

// checkSnapshotRuns checks a start "snapshot" group's deliveries: one
// run (a connection's snapshot rows) began before the kill, those after
// it never overlap in time, the last one has
// every static row at its version, per connection and key versions
// increase, and the completed snapshot and the stream end at the bus's
// last event of every key.
func checkSnapshotRuns(t *testing.T, got []snapDelivery, static map[string]uint64, killedAt time.Time, events []Event) {
	t.Helper()
	type span struct {
		first, last time.Time
		rows        map[string]uint64
	}
	runs := map[[2]string]*span{}
	var order [][2]string
	last := map[[2]string]map[string]uint64{}
	for _, d := range got {
		c := [2]string{d.member, fmt.Sprint(d.conn)}
		if last[c] == nil {
			last[c] = map[string]uint64{}
		}
		if v := last[c][d.key]; d.version <= v {
			t.Fatalf("%s connection %s: key %s version %d after %d", d.member, c[1], d.key, d.version, v)
		}
		last[c][d.key] = d.version
		if !d.snapshot {
			continue
		}
		s := runs[c]
		if s == nil {
			s = &span{first: d.at, rows: map[string]uint64{}}
			runs[c] = s
			order = append(order, c)
		}
		s.last = d.at
		s.rows[d.key] = d.version
	}
	if len(order) < 2 {
		t.Fatalf("snapshot runs %v: want the killed one and one taken again", order)
	}
	// The killed process's run (its rows buffered on the connection may be
	// read after the kill) is the only one begun before the kill; the
	// runs after it, on the surviving process, one at a time.
	if runs[order[1]].first.Before(killedAt) {
		t.Fatalf("snapshot runs %v and %v both began before the kill", order[0], order[1])
	}
	for i := 2; i < len(order); i++ {
		a, b := runs[order[i-1]], runs[order[i]]
		if !b.first.After(a.last) {
			t.Fatalf("snapshot runs overlap: %v until %s, %v from %s", order[i-1], a.last.Format(time.StampMicro), order[i], b.first.Format(time.StampMicro))
		}
	}
	done := runs[order[len(order)-1]]
	for k, v := range static {
		if done.rows[k] != v {
			t.Fatalf("the completed snapshot has %s at version %d, want %d", k, done.rows[k], v)
		}
	}
	// The read model: the completed snapshot, then the stream.
	model := map[string]uint64{}
	for k, v := range done.rows {
		model[k] = v
	}
	for _, d := range got {
		if !d.snapshot && d.version > model[d.key] {
			model[d.key] = d.version
		}
	}
	final := map[string]Event{}
	for _, e := range events {
		final[string(e.Key)] = e
	}
	for k, e := range final {
		v, ok := model[k]
		if e.Op == intent.Delete && !ok {
			continue // deleted before the snapshot: never in it
		}
		if v != e.Version {
			t.Fatalf("key %s: the group ends at version %d, the bus at %d (%v)", k, v, e.Version, e.Op)
		}
	}
	t.Logf("snapshot runs %v (%d rows in the first, %d in the completed one); %d deliveries; %d keys on the bus",
		order, len(runs[order[0]].rows), len(done.rows), len(got), len(final))
}

// consumeSnapshot is one connection of a member of group "g" started
// from "snapshot": it records what it receives (reading each snapshot row
// slowly while slow is set) and the grants, and acknowledges the stream's
// events every third event of a partition and when idle for 50 ms.
func consumeSnapshot(ctx context.Context, url, table, id string, conn, proc int, slow *atomic.Bool, mu *sync.Mutex, got *[]snapDelivery, grants *[]delivery) {
	c := wailv1connect.NewEventServiceClient(http.DefaultClient, url)
	s, err := c.Consume(ctx, connect.NewRequest(&wailv1.ConsumeRequest{Table: table, Group: "g", Member: id, Start: "snapshot"}))
	if err != nil {
		return
	}
	defer s.Close()
	msgs := receiveAll(ctx, s, func(m *wailv1.ConsumeResponse) {
		if m.Snapshot && slow.Load() {
			time.Sleep(20 * time.Millisecond)
		}
	})
	pending := map[int32]*wailv1.PartitionAck{}
	count := map[int32]int{}
	ack := func() {
		if req := takeAcks(table, id, pending); req != nil {
			_, _ = c.Ack(ctx, connect.NewRequest(req)) // refused: delivered again, checked by the delivery checks
		}
	}
	idle := time.NewTicker(50 * time.Millisecond)
	defer idle.Stop()
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return
			}
			mu.Lock()
			for _, g := range m.Granted {
				*grants = append(*grants, delivery{member: id, proc: proc, p: g.Partition, off: g.Offset, epoch: g.Epoch})
			}
			mu.Unlock()
			for _, p := range m.Revoked {
				delete(pending, p)
			}
			if m.Event == nil {
				continue
			}
			mu.Lock()
			*got = append(*got, snapDelivery{member: id, conn: conn, proc: proc, at: time.Now(), snapshot: m.Snapshot, p: m.Partition, off: m.Offset,
				key: string(m.Event.Key), version: m.Event.Version, delete: m.Event.Op == wailv1.Op_OP_DELETE})
			mu.Unlock()
			if m.Snapshot {
				continue
			}
			pending[m.Partition] = &wailv1.PartitionAck{Partition: m.Partition, Epoch: m.Epoch, Next: m.Next}
			if count[m.Partition]++; count[m.Partition]%3 == 0 {
				ack()
			}
		case <-idle.C:
			ack()
		case <-ctx.Done():
			return
		}
	}
}
