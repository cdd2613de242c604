package e2etest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/intentlog/kafka"
	"github.com/wail-cdc/wail/internal/store/cassandra/cassandratest"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// delivery is an event a member got, or an acknowledgement of it that
// the server accepted.
type delivery struct {
	member  string
	proc    int
	ack     bool
	sent    time.Time // acknowledgement: when it was sent
	at      time.Time // event: received; acknowledgement: answered
	p       int32
	off     int64 // event: its offset; acknowledgement: next
	next    int64 // event: the position after it
	epoch   uint64
	key     string
	version uint64
}

// TestGroupAcrossProcesses: three `wail serve` processes share a
// store and a Kafka bus; a consumer group of three members,
// one connected to each process, consumes a table while writers write.
// The first process is killed with SIGKILL mid-run (its member
// reconnects to another process, as a client does), a fourth member
// joins, and the second process is frozen (SIGSTOP) while its member
// acknowledges, for two leases and until a live member got the partition:
// when it runs again, that acknowledgement is refused. Every event on the
// bus is delivered at least once; per member,
// partition and epoch in offset order and per key in version order; an
// event is delivered again only if no acknowledgement covered it; an
// epoch belongs to one member; and once an acknowledgement under an
// epoch was accepted, none under an older epoch of that partition is
// (fencing: two members never both commit a partition).
// It runs on each store processes can share (PostgreSQL, MariaDB,
// Cassandra: the group's entry is changed by each one's compare-and-set).
func TestGroupAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wail binary")
	}
	for _, store := range sharedStores {
		t.Run(store, func(t *testing.T) { testGroupAcrossProcesses(t, store) })
	}
}

func testGroupAcrossProcesses(t *testing.T, store string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const parts = 6
	d := startSharedOn(t, ctx, store, "xg_", 3, parts, "")
	tbl, url := d.table, d.url
	procs := d.procs

	var dead [3]atomic.Bool
	var mu sync.Mutex
	var got []delivery
	joins := map[string]int{} // member: memberships
	mctx, stopMembers := context.WithCancel(ctx)
	var members sync.WaitGroup
	holds := map[string]*atomic.Bool{"m1": {}, "m2": {}} // set: the member stops acknowledging
	refused := map[string]int{}                          // member: acknowledgements refused
	member := func(id string, proc int) {
		members.Go(func() {
			d.reconnect(mctx, proc, dead[:], func(url string, proc int) {
				consumeVia(mctx, url, tbl, id, proc, holds[id], &mu, &got, joins, refused)
			})
		})
	}
	for i := range 3 {
		member(fmt.Sprintf("m%d", i+1), i)
	}

	w := &remoteWriters{table: tbl}
	stopWriters := w.start(ctx, url(2), 3)
	delivered := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	step := func(what string, minDelivered int) {
		w.progress(t, "before: "+what)
		waitFor(t, fmt.Sprintf("%d deliveries before: %s", minDelivered, what), func() bool { return delivered() >= minDelivered })
		t.Logf("%s (%d writes acknowledged, %d deliveries)", what, w.acked.Load(), delivered())
	}
	step("first process killed with SIGKILL", 200)
	// Its member holds events it did not acknowledge when it dies.
	holdEvents := func(id string) {
		holds[id].Store(true)
		heldAt := time.Now()
		waitFor(t, "events "+id+" does not acknowledge", func() bool {
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for _, d := range got {
				if d.member == id && !d.ack && d.at.After(heldAt.Add(100*time.Millisecond)) {
					n++
				}
			}
			return n >= 3
		})
	}
	holdEvents("m1")
	dead[0].Store(true)
	procs[0].kill(t)
	holds["m1"].Store(false)
	killedAt := time.Now()
	step("a fourth member joins", delivered()+200)
	member("m4", 1)
	step("second process frozen (SIGSTOP) for two leases", delivered()+200)
	// A zombie: its member m2 acknowledges (while it is frozen) what it
	// got before; once a live member got that partition (under a newer
	// epoch) and the process runs again, the acknowledgement must be
	// refused.
	holdEvents("m2")
	if err := procs[1].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Stopped only once every thread is: an acknowledgement sent before
	// that may still be handled (and time out in its commit).
	waitFor(t, "the second process stopped", func() bool { return stopped(t, procs[1].cmd.Process.Pid) })
	frozenAt := time.Now()
	holds["m2"].Store(false)
	// The member's own acknowledgement may find nothing pending (a
	// rebalance can revoke its partitions just before the freeze), so the
	// zombie's acknowledgement of the last event m2 got is also sent here,
	// to the frozen process, under m2's name and that event's epoch.
	last := lastEvent(&mu, &got, "m2")
	zombie := zombieAck(mctx, d.url(1), tbl, "m2", last)
	time.Sleep(2*d.lease + time.Second) // api.group_lease_timeout, twice, and a margin
	// The frozen process stops only when a live member got the partition:
	// on a busy machine the others' syncs (lightweight transactions on
	// Cassandra) can take longer than two leases, and until one of them
	// claims the partition the frozen process still owns it (its lease
	// write after the freeze succeeds), and may accept the acknowledgement.
	waitFor(t, fmt.Sprintf("delivery of partition %d by a live member after the freeze (the group failing over)", last.p), func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range got {
			if !d.ack && d.p == last.p && d.epoch > last.epoch && d.at.After(frozenAt) {
				return true
			}
		}
		return false
	})
	if err := procs[1].cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-zombie:
		if err != nil {
			t.Fatalf("the zombie's acknowledgement after the freeze, once partition %d moved: %v", last.p, err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the zombie's acknowledgement got no answer within a minute of the process running again")
	}
	step("writes stop", delivered()+200)
	stopWriters()

	events := d.events(t, ctx)
	// missing: per partition, how many events on the bus no member got,
	// and the first of them
	missing := func() map[int32][2]int64 {
		mu.Lock()
		defer mu.Unlock()
		seen := map[[2]int64]bool{}
		for _, d := range got {
			if !d.ack {
				seen[[2]int64{int64(d.p), d.off}] = true
			}
		}
		n := map[int32][2]int64{}
		for _, e := range events {
			if !seen[[2]int64{int64(e.Partition), e.Offset}] {
				m, ok := n[e.Partition]
				if !ok {
					m[1] = e.Offset
				}
				m[0]++
				n[e.Partition] = m
			}
		}
		return n
	}
	for deadline := time.Now().Add(time.Minute); len(missing()) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			desc, err := wailv1connect.NewEventServiceClient(http.DefaultClient, url(2)).DescribeGroup(ctx,
				connect.NewRequest(&wailv1.DescribeGroupRequest{Table: tbl, Group: "g"}))
			t.Fatalf("events on the bus no member got within a minute (partition: [count, first offset]): %v; the group: %v %v",
				missing(), desc, err)
		}
	}
	// Any process describes the whole group, balanced once the syncs
	// after the last lease expiry went through (each a lightweight
	// transaction on Cassandra, slow on a busy machine); a reset waits
	// for its members.
	events3 := wailv1connect.NewEventServiceClient(http.DefaultClient, url(2))
	var described []string
	owners := map[string]bool{}
	balanced := func() bool {
		desc, err := events3.DescribeGroup(ctx, connect.NewRequest(&wailv1.DescribeGroupRequest{Table: tbl, Group: "g"}))
		if err != nil {
			t.Fatal(err)
		}
		described, owners = desc.Msg.Members, map[string]bool{}
		for _, p := range desc.Msg.Partitions {
			owners[p.Owner] = true
		}
		return len(described) == 4 && len(owners) == 4 && !owners[""]
	}
	for deadline := time.Now().Add(time.Minute); !balanced(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("describe through process 3: members %v, owners %v; want the 4 members, each owning partitions", described, owners)
		}
	}
	if _, err := events3.ResetGroup(ctx, connect.NewRequest(&wailv1.ResetGroupRequest{Table: tbl, Group: "g", To: "latest"})); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("reset of a group with members on other processes: %v, want failed_precondition", err)
	}
	stopMembers()
	members.Wait()
	procs[1].terminate(t)
	procs[2].terminate(t)

	mu.Lock()
	defer mu.Unlock()
	dups := checkAcrossProcesses(t, got)
	afterKill, deliveries := 0, 0
	for _, d := range got {
		if !d.ack {
			deliveries++
		}
		if !d.ack && d.at.After(killedAt) {
			afterKill++
		}
	}
	t.Logf("%d events on the bus, %d deliveries (%d after the kill), %d of them again; memberships %v; acknowledgements refused %v",
		len(events), deliveries, afterKill, dups, joins, refused)
	// The events m1 got and never acknowledged came again.
	if len(events) == 0 || afterKill == 0 || joins["m1"] < 2 || joins["m4"] < 1 || dups == 0 {
		t.Fatalf("the run did not exercise the faults: %d events, %d deliveries after the kill, memberships %v, %d redeliveries",
			len(events), afterKill, joins, dups)
	}
}

// stopped says whether every thread of process pid is stopped (state T
// in /proc/PID/task/TID/stat).
func stopped(t *testing.T, pid int) bool {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of process %d: %v", pid, err)
	}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			return false // a thread that ended meanwhile: look again
		}
		// pid (comm) state ...: comm may hold spaces and parentheses
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

// lastEvent is the last event member id got.
func lastEvent(mu *sync.Mutex, got *[]delivery, id string) delivery {
	mu.Lock()
	defer mu.Unlock()
	for i := len(*got) - 1; i >= 0; i-- {
		if d := (*got)[i]; d.member == id && !d.ack {
			return d
		}
	}
	panic("no event of " + id)
}

// zombieAck acknowledges e for member id through url, in the background,
// and sends nil once the acknowledgement was refused (the member is gone,
// or the partition is no longer its own under e's epoch); an error if it
// was accepted or failed otherwise.
func zombieAck(ctx context.Context, url, table, id string, e delivery) <-chan error {
	res := make(chan error, 1)
	go func() {
		c := wailv1connect.NewEventServiceClient(http.DefaultClient, url)
		resp, err := c.Ack(ctx, connect.NewRequest(&wailv1.AckRequest{Table: table, Group: "g", Member: id,
			Acks: []*wailv1.PartitionAck{{Partition: e.p, Epoch: e.epoch, Next: e.next}}}))
		switch {
		case connect.CodeOf(err) == connect.CodeFailedPrecondition:
			res <- nil
		case err != nil:
			res <- fmt.Errorf("failed, but not with failed_precondition: %w", err)
		case len(resp.Msg.Refused) == 1 && resp.Msg.Refused[0].Partition == e.p:
			res <- nil
		default:
			res <- fmt.Errorf("accepted: partition %d under epoch %d up to %d", e.p, e.epoch, e.next)
		}
	}()
	return res
}

// consumeVia is one membership of a member on a process: it records each
// event and each accepted acknowledgement, acknowledging every third event
// of a partition and whatever is pending when idle for 50ms.
// While hold is set (nil: never) it does not acknowledge; refused counts
// its acknowledgements refused.
func consumeVia(ctx context.Context, url, table, id string, proc int, hold *atomic.Bool, mu *sync.Mutex, got *[]delivery, joins, refused map[string]int) {
	c := wailv1connect.NewEventServiceClient(http.DefaultClient, url)
	s, err := c.Consume(ctx, connect.NewRequest(&wailv1.ConsumeRequest{Table: table, Group: "g", Member: id}))
	if err != nil {
		return
	}
	defer s.Close()
	msgs := receiveAll(ctx, s, nil)
	pending := map[int32]*wailv1.PartitionAck{}
	count := map[int32]int{}
	ack := func() {
		if hold != nil && hold.Load() {
			return
		}
		req := takeAcks(table, id, pending)
		if req == nil {
			return
		}
		sent := time.Now()
		resp, err := c.Ack(ctx, connect.NewRequest(req))
		if err != nil {
			if connect.CodeOf(err) == connect.CodeFailedPrecondition { // not a member any more
				mu.Lock()
				refused[id]++
				mu.Unlock()
			}
			return
		}
		at := time.Now()
		no := map[int32]bool{}
		for _, r := range resp.Msg.Refused {
			no[r.Partition] = true
		}
		mu.Lock()
		defer mu.Unlock()
		refused[id] += len(no)
		for _, a := range req.Acks {
			if !no[a.Partition] {
				*got = append(*got, delivery{member: id, proc: proc, ack: true, sent: sent, at: at, p: a.Partition, off: a.Next, epoch: a.Epoch})
			}
		}
	}
	idle := time.NewTicker(50 * time.Millisecond)
	defer idle.Stop()
	joined := false
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return
			}
			if !joined {
				joined = true
				mu.Lock()
				joins[id]++
				mu.Unlock()
			}
			for _, p := range m.Revoked {
				delete(pending, p)
			}
			if m.Event == nil {
				continue
			}
			mu.Lock()
			*got = append(*got, delivery{member: id, proc: proc, at: time.Now(), p: m.Partition, off: m.Offset, next: m.Next, epoch: m.Epoch,
				key: string(m.Event.Key), version: m.Event.Version})
			mu.Unlock()
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

// receiveAll passes a Consume stream's messages on (each after delay's
// pause, if set) until it ends or ctx does.
func receiveAll(ctx context.Context, s *connect.ServerStreamForClient[wailv1.ConsumeResponse], delay func(*wailv1.ConsumeResponse)) <-chan *wailv1.ConsumeResponse {
	msgs := make(chan *wailv1.ConsumeResponse)
	go func() {
		defer close(msgs)
		for s.Receive() {
			if delay != nil {
				delay(s.Msg())
			}
			select {
			case msgs <- s.Msg():
			case <-ctx.Done():
				return
			}
		}
	}()
	return msgs
}

// takeAcks empties pending into an Ack request of member id of group "g"
// (nil: nothing pending).
func takeAcks(table, id string, pending map[int32]*wailv1.PartitionAck) *wailv1.AckRequest {
	if len(pending) == 0 {
		return nil
	}
	req := &wailv1.AckRequest{Table: table, Group: "g", Member: id}
	for _, a := range pending {
		req.Acks = append(req.Acks, a)
	}
	clear(pending)
	return req
}

// checkAcrossProcesses checks the deliveries (in the order recorded) and
// returns how many repeated another.
func checkAcrossProcesses(t *testing.T, got []delivery) int {
	t.Helper()
	type run struct {
		member string
		proc   int
		p      int32
		epoch  uint64
	}
	owner := map[[2]uint64]run{} // partition, epoch: who got it
	lastOff := map[run]int64{}
	lastVersion := map[run]map[string]uint64{}
	var acks []delivery
	for _, d := range got {
		if d.ack {
			acks = append(acks, d)
		}
	}
	// Fencing: an acknowledgement sent after one under a newer epoch of
	// its partition was accepted must have been refused.
	for _, a := range acks {
		for _, b := range acks {
			if a.p == b.p && b.epoch < a.epoch && b.sent.After(a.at) {
				t.Fatalf("partition %d: %s's acknowledgement under epoch %d accepted at %s, after %s's under epoch %d was answered at %s",
					a.p, b.member, b.epoch, b.at.Format(time.StampMicro), a.member, a.epoch, a.at.Format(time.StampMicro))
			}
		}
	}
	seen := map[[2]int64]bool{}
	dups := 0
	for _, d := range got {
		if d.ack {
			continue
		}
		r := run{d.member, d.proc, d.p, d.epoch}
		k := [2]uint64{uint64(d.p), d.epoch}
		if o, ok := owner[k]; ok && (o.member != r.member || o.proc != r.proc) {
			t.Fatalf("partition %d epoch %d delivered to %s on process %d and to %s on process %d", d.p, d.epoch, o.member, o.proc, r.member, r.proc)
		}
		owner[k] = r
		if o, ok := lastOff[r]; ok && d.off <= o {
			t.Fatalf("%s: partition %d epoch %d: offset %d after %d", d.member, d.p, d.epoch, d.off, o)
		}
		lastOff[r] = d.off
		if lastVersion[r] == nil {
			lastVersion[r] = map[string]uint64{}
		}
		if v := lastVersion[r][d.key]; d.version <= v {
			t.Fatalf("%s: key %s: version %d after %d", d.member, d.key, d.version, v)
		}
		lastVersion[r][d.key] = d.version
		for _, a := range acks {
			if a.p == d.p && a.epoch < d.epoch && a.off > d.off {
				t.Fatalf("%s: partition %d offset %d delivered under epoch %d, though acknowledged up to %d under epoch %d",
					d.member, d.p, d.off, d.epoch, a.off, a.epoch)
			}
		}
		key := [2]int64{int64(d.p), d.off}
		if seen[key] {
			dups++
		}
		seen[key] = true
	}
	return dups
}

// sharedDeployment is `wail serve` processes sharing a store (a fresh
// PostgreSQL schema, MariaDB database or Cassandra keyspace) and Kafka,
// with api.group_lease_timeout 3s (10s on Cassandra: a sync's read and
// swap are each bounded by a quarter of it, and a lightweight transaction
// on the loaded test cluster takes up to seconds), and a table.
type sharedDeployment struct {
	procs   []*child
	table   string
	parts   int32
	dsn     string // PostgreSQL
	brokers []string
	lease   time.Duration // api.group_lease_timeout
}

func (d *sharedDeployment) url(i int) string { return "http://" + d.procs[i].addr }

// startShared starts n processes on PostgreSQL (startSharedOn).
func startShared(t *testing.T, ctx context.Context, prefix string, n int, parts int32, extraYAML string) *sharedDeployment {
	t.Helper()
	return startSharedOn(t, ctx, "postgres", prefix, n, parts, extraYAML)
}

// sharedStores are the stores processes can share a group on.
var sharedStores = []string{"postgres", "mysql", "cassandra"}

// startSharedOn starts n processes on a fresh database of store (one of
// sharedStores; extraYAML added to their configuration) and creates a
// table of parts partitions through the last one.
func startSharedOn(t *testing.T, ctx context.Context, store, prefix string, n int, parts int32, extraYAML string) *sharedDeployment {
	t.Helper()
	d := &sharedDeployment{brokers: kafkaBrokers(t), table: sqltest.Name(prefix), parts: parts, lease: 3 * time.Second}
	var storeArgs []string
	switch store {
	case "postgres":
		primary, _ := pgDSNs(t)
		d.dsn, _ = freshSchema(t, primary, "")
		storeArgs = []string{"--dsn", d.dsn}
	case "mysql":
		storeArgs = []string{"--dsn", sqltest.MySQLDatabase(t, sqltest.MySQL(t))}
	case "cassandra":
		hosts := cassandratest.Hosts(t)
		extraYAML += "store:\n  cassandra:\n    keyspace: " + cassandratest.Keyspace(t, hosts) +
			"\n    replication: {class: NetworkTopologyStrategy, " + cassandratest.DC() + ": 3}\n"
		storeArgs = []string{"--hosts", strings.Join(hosts, ",")}
		d.lease = 10 * time.Second
	default:
		t.Fatalf("store %q cannot be shared", store)
	}
	bin := buildWail(t)
	cfgFile := filepath.Join(t.TempDir(), "wail.yaml")
	yaml := fmt.Sprintf("catalog_refresh: 100ms\nresolver:\n  group: wail-resolver.%s\n  commit_interval: 50ms\napi:\n  group_lease_timeout: %s\n%s", d.table, d.lease, extraYAML)
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		args := append([]string{"serve", "--config", cfgFile, "--data-dir", t.TempDir(), "--store", store}, storeArgs...)
		d.procs = append(d.procs, startWail(t, bin, append(args, "--log", "kafka", "--brokers", strings.Join(d.brokers, ","), "--proxy-id", strconv.Itoa(i+1))...))
	}
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, d.url(n-1))
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: d.table, Partitions: parts, VisibilityWindowMs: 2000})); err != nil {
		t.Fatal(err)
	}
	return d
}

// reconnect runs a member as a client does until ctx ends: connect on
// process proc, and when the connection ends, again on the same process,
// or on the next live one once dead[proc] is set.
func (d *sharedDeployment) reconnect(ctx context.Context, proc int, dead []atomic.Bool, connect func(url string, proc int)) {
	for ctx.Err() == nil {
		for dead[proc].Load() {
			proc = (proc + 1) % len(dead)
		}
		connect(d.url(proc), proc)
		time.Sleep(50 * time.Millisecond)
	}
}

// write writes muts through process proc and returns their versions; a
// write not acknowledged fails the test.
func (d *sharedDeployment) write(t *testing.T, ctx context.Context, proc int, muts []*wailv1.Mutation) []uint64 {
	t.Helper()
	resp, err := wailv1connect.NewProducerServiceClient(http.DefaultClient, d.url(proc)).Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: muts}))
	if err != nil {
		t.Fatal(err)
	}
	versions := make([]uint64, len(muts))
	for i, r := range resp.Msg.Results {
		if r.Error != nil || !r.IntentLogged {
			t.Fatalf("write of %s: %v", muts[i].Key, r.Error)
		}
		versions[i] = r.Version
	}
	return versions
}

// events waits until the resolvers resolved every intent and returns the
// table's events on the bus.
func (d *sharedDeployment) events(t *testing.T, ctx context.Context) []Event {
	t.Helper()
	log, err := kafka.Open(ctx, kafka.Options{Brokers: d.brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	tb := catalog.Table{Name: d.table, Partitions: d.parts}
	waitResolved(t, ctx, log, "wail-resolver."+d.table, tb)
	return readEvents(t, ctx, log, tb)
}
