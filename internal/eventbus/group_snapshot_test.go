package eventbus_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/server/servertest"
	"github.com/wail-cdc/wail/internal/store"
)

// snapMemberEnv runs TestGroupSnapshotMemberProcess: "url table group
// member stall" (stall > 0: stop reading after that many snapshot rows).
const snapMemberEnv = "WAIL_TEST_SNAPSHOT_MEMBER"

// TestGroupSnapshotMemberProcess is the child process of
// TestGroupSnapshotMemberKilled: a member of a start "snapshot" group
// (client.Consumer) that prints each snapshot row ("S key version op"),
// each grant ("G"), each event ("E partition offset key version op") and
// acknowledges each row and event. With stall > 0 it prints "STALLED" after that
// many rows and reads no more, so the server's snapshot blocks until the
// process is killed.
func TestGroupSnapshotMemberProcess(t *testing.T) {
	spec := os.Getenv(snapMemberEnv)
	if spec == "" {
		t.Skip("the child process of TestGroupSnapshotMemberKilled")
	}
	go eventbus.ExitWhenOrphaned()
	f := strings.Fields(spec)
	url, table, grp, member := f[0], f[1], f[2], f[3]
	stall, _ := strconv.Atoi(f[4])
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
	}
	ctx := context.Background()
	events := wailv1connect.NewEventServiceClient(http.DefaultClient, url)
	for {
		c, err := client.NewConsumer(ctx, events, client.ConsumerConfig{Table: table, Group: grp, Member: member, Start: "snapshot",
			OnPartitions: func(granted []*wailv1.PartitionGrant, _ []int32) {
				if len(granted) > 0 {
					say("G")
				}
			}})
		if err != nil {
			say("END %v", err)
			return
		}
		rows := 0
		for {
			m, err := c.Next(ctx)
			if err != nil {
				if connect.CodeOf(err) == connect.CodeAborted {
					break // a lease expired on a loaded machine: join again, as a consumer would
				}
				say("END %v", err)
				return
			}
			op := "U"
			if m.Event.Op == wailv1.Op_OP_DELETE {
				op = "D"
			}
			if m.Snapshot {
				say("S %s %d %s", m.Event.Key, m.Event.Version, op)
				if rows++; rows == stall {
					say("STALLED")
					select {}
				}
			} else {
				say("E %d %d %s %d %s", m.Partition, m.Offset, m.Event.Key, m.Event.Version, op)
			}
			if err := c.Ack(ctx, m); err != nil && !errors.Is(err, client.ErrAckRefused) {
				say("END ack: %v", err)
				return
			}
		}
		c.Close()
	}
}

// snapLine is one line a member of TestGroupSnapshotMemberKilled printed.
type snapLine struct {
	kind    byte // S, E, G
	key     string
	version uint64
	deleted bool
}

// snapMember is a member process and what it printed.
type snapMember struct {
	id      string
	cmd     *exec.Cmd
	done    chan struct{}
	mu      sync.Mutex
	lines   []snapLine
	stalled bool
	end     string
}

func (m *snapMember) snapshot() (lines []snapLine, stalled bool, end string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]snapLine(nil), m.lines...), m.stalled, m.end
}

func startSnapMember(t *testing.T, url, table, grp, id string, stall int) *snapMember {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestGroupSnapshotMemberProcess$")
	cmd.Env = append(os.Environ(), snapMemberEnv+"="+strings.Join([]string{url, table, grp, id, strconv.Itoa(stall)}, " "))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &snapMember{id: id, cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			m.mu.Lock()
			switch {
			case len(f) == 0:
			case f[0] == "STALLED":
				m.stalled = true
			case f[0] == "END":
				m.end = sc.Text()
			case f[0] == "G":
				m.lines = append(m.lines, snapLine{kind: 'G'})
			case f[0] == "S" && len(f) == 4, f[0] == "E" && len(f) == 6:
				v, _ := strconv.ParseUint(f[len(f)-2], 10, 64)
				m.lines = append(m.lines, snapLine{kind: f[0][0], key: f[len(f)-3], version: v, deleted: f[len(f)-1] == "D"})
			}
			m.mu.Unlock()
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-m.done
	})
	return m
}

// writeLargeRows writes keys k0000... of table with 16 KiB values: rows
// large enough that a member that stops reading holds the server's
// snapshot back long before its end (more than the connection's buffers
// take: about 6 MB on loopback).
func writeLargeRows(ctx context.Context, t *testing.T, prod wailv1connect.ProducerServiceClient, table string, keys int) {
	t.Helper()
	pad := bytes.Repeat([]byte("x"), 16<<10)
	for i := 0; i < keys; i += 50 {
		var muts []*wailv1.Mutation
		for j := i; j < min(i+50, keys); j++ {
			muts = append(muts, &wailv1.Mutation{Table: table, Key: fmt.Appendf(nil, "k%04d", j), Op: wailv1.Op_OP_UPSERT, Value: pad})
		}
		if _, err := prod.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: muts})); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGroupSnapshotMemberKilled: members of a start "snapshot" group are
// real processes while writers put and delete keys. The first member
// stops mid-snapshot and is killed (SIGKILL) there; the next member takes
// the snapshot again (nothing was committed), another one waits for it
// and joins from its end. Per member and per key the versions received
// never go back; no event after the snapshot is older than a snapshot
// row; every acknowledged write is received (at its version or a later
// one); once writes stop, every key ends with the store's state.
func TestGroupSnapshotMemberKilled(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"embedded", "kafka"} {
		t.Run(kind, func(t *testing.T) { testGroupSnapshotMemberKilled(t, kind) })
	}
}

func testGroupSnapshotMemberKilled(t *testing.T, kind string) {
	t.Parallel()
	srv, url, tbl := startSnapshotServer(t, kind, "gs_", 32)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
	prod := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	events := wailv1connect.NewEventServiceClient(http.DefaultClient, url)
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: tbl, Partitions: 4})); err != nil {
		t.Fatal(err)
	}
	const keys = 1500
	key := func(i int) string { return fmt.Sprintf("k%04d", i) }
	writeLargeRows(ctx, t, prod, tbl, keys)

	// Writers put and delete keys (existing and new ones) from before the
	// first member joins until the group converged; acked is the highest
	// acknowledged version of each key.
	var amu sync.Mutex
	acked := map[string]uint64{}
	stop := make(chan struct{})
	var writers sync.WaitGroup
	for w := range 3 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				k := key(rng.IntN(keys + 100))
				var res *wailv1.WriteResult
				if rng.IntN(5) == 0 {
					r, err := prod.Delete(ctx, connect.NewRequest(&wailv1.DeleteRequest{Table: tbl, Key: []byte(k)}))
					if err != nil {
						t.Errorf("delete: %v", err)
						return
					}
					res = r.Msg.Result
				} else {
					r, err := prod.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: tbl, Key: []byte(k), Value: fmt.Appendf(nil, "w%d-%d", w, n)}))
					if err != nil {
						t.Errorf("put: %v", err)
						return
					}
					res = r.Msg.Result
				}
				amu.Lock()
				acked[k] = max(acked[k], res.Version)
				amu.Unlock()
			}
		}()
	}
	stopWriters := sync.OnceFunc(func() { close(stop); writers.Wait() })
	defer stopWriters()

	describe := func() *wailv1.DescribeGroupResponse {
		r, err := events.DescribeGroup(ctx, connect.NewRequest(&wailv1.DescribeGroupRequest{Table: tbl, Group: "g"}))
		if connect.CodeOf(err) == connect.CodeNotFound {
			return &wailv1.DescribeGroupResponse{}
		}
		if err != nil {
			t.Fatal(err)
		}
		return r.Msg
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("waiting for %s: %v", what, ctx.Err())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// m1 stops reading after 20 rows: the server's snapshot blocks there.
	m1 := startSnapMember(t, url, tbl, "g", "m1", 20)
	waitFor("m1 to stall mid-snapshot", func() bool { _, stalled, end := m1.snapshot(); return stalled || end != "" })
	if _, _, end := m1.snapshot(); end != "" {
		t.Fatalf("m1 ended before it stalled: %s", end)
	}
	var atKill *wailv1.DescribeGroupResponse
	waitFor("m1's snapshot to stop progressing", func() bool {
		before := describe()
		time.Sleep(300 * time.Millisecond)
		atKill = describe()
		return atKill.SnapshotEvents == before.SnapshotEvents
	})
	// Two more members start from "snapshot" while m1 holds the snapshot.
	m2 := startSnapMember(t, url, tbl, "g", "m2", 0)
	m3 := startSnapMember(t, url, tbl, "g", "m3", 0)
	time.Sleep(200 * time.Millisecond)
	atKill = describe()
	if atKill.SnapshotMember != "m1" || len(atKill.Partitions) != 0 || atKill.SnapshotEvents >= keys {
		t.Fatalf("before the kill: snapshot member %q, %d rows sent of at least %d, %d partitions committed; want m1 mid-snapshot and none committed",
			atKill.SnapshotMember, atKill.SnapshotEvents, keys, len(atKill.Partitions))
	}
	m1.cmd.Process.Signal(syscall.SIGKILL)
	<-m1.done
	t.Logf("m1 killed mid-snapshot after %d of at least %d rows were sent", atKill.SnapshotEvents, keys)

	// The next member takes the snapshot again; the other joins after it.
	var taker *snapMember
	waitFor("a member to take the snapshot again", func() bool {
		for _, m := range []*snapMember{m2, m3} {
			if lines, _, _ := m.snapshot(); len(lines) > 0 && lines[0].kind == 'S' {
				taker = m
				return true
			}
		}
		return false
	})
	granted := func(m *snapMember) bool {
		lines, _, end := m.snapshot()
		if end != "" {
			t.Fatalf("%s ended: %s", m.id, end)
		}
		for _, l := range lines {
			if l.kind == 'G' {
				return true
			}
		}
		return false
	}
	waitFor("both members to join", func() bool { return granted(m2) && granted(m3) })
	time.Sleep(500 * time.Millisecond) // writes go on with both members streaming
	stopWriters()

	// Once writes stopped, the group converges on the store's state.
	level := store.Level(len(srv.Store().Levels()) - 1)
	var want map[string]store.Row
	var lines map[string][]snapLine
	diff := func() string {
		lines = map[string][]snapLine{}
		last := map[string]snapLine{}
		for _, m := range []*snapMember{m2, m3} {
			ls, _, end := m.snapshot()
			if end != "" {
				t.Fatalf("%s ended: %s", m.id, end)
			}
			lines[m.id] = ls
			for _, l := range ls {
				if l.kind != 'G' && l.version > last[l.key].version {
					last[l.key] = l
				}
			}
		}
		for k, row := range want {
			l, ok := last[k]
			switch {
			case row.Deleted && ok && (!l.deleted || l.version != row.Version):
				return fmt.Sprintf("key %s deleted at %d, the group's last is %+v", k, row.Version, l)
			case !row.Deleted && (l.deleted || l.version != row.Version):
				return fmt.Sprintf("key %s at %d in the store, the group's last is %+v", k, row.Version, l)
			}
		}
		return ""
	}
	want = map[string]store.Row{}
	for i := range keys + 100 {
		row, found, err := srv.Store().Get(ctx, tbl, []byte(key(i)), level)
		if err != nil {
			t.Fatal(err)
		}
		if found {
			want[key(i)] = row
		}
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		d := diff()
		if d == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group does not reach the store's state: %s", d)
		}
	}

	rows, evs := 0, 0
	snapRow := map[string]uint64{}
	for _, id := range []string{m2.id, m3.id} {
		seen := map[string]uint64{}
		for _, l := range lines[id] {
			if l.kind == 'G' {
				continue
			}
			if v, ok := seen[l.key]; ok && l.version <= v {
				t.Fatalf("%s: key %s: version %d after %d", id, l.key, l.version, v)
			}
			seen[l.key] = l.version
			if l.kind == 'S' {
				rows++
				snapRow[l.key] = max(snapRow[l.key], l.version)
			} else {
				evs++
			}
		}
	}
	for _, id := range []string{m2.id, m3.id} {
		for _, l := range lines[id] {
			if l.kind == 'E' && l.version <= snapRow[l.key] {
				t.Fatalf("%s: key %s: event at %d after the snapshot's row at %d", id, l.key, l.version, snapRow[l.key])
			}
		}
	}
	received := map[string]uint64{}
	for _, ls := range lines {
		for _, l := range ls {
			received[l.key] = max(received[l.key], l.version)
		}
	}
	amu.Lock()
	defer amu.Unlock()
	for k, v := range acked {
		// (A key deleted before the snapshot and not written since is
		// not in it: a consumer starting from it has nothing of it.)
		if received[k] < v && (received[k] > 0 || !want[k].Deleted || want[k].Version < v) {
			t.Fatalf("key %s: write at %d acknowledged, the group received up to %d", k, v, received[k])
		}
	}
	if other := map[*snapMember]*snapMember{m2: m3, m3: m2}[taker]; len(lines[other.id]) > 0 && lines[other.id][0].kind == 'S' {
		t.Fatalf("both %s and %s took the snapshot", m2.id, m3.id)
	}
	t.Logf("%s: %s took the snapshot again: %d rows, then %d events across 2 members; %d keys written by %d writers",
		kind, taker.id, rows, evs, len(acked), 3)
	if evs == 0 {
		t.Fatal("no event after the snapshot: the test needs writes during and after it")
	}
}

// TestGroupSnapshotMemberJoinsMidway: a member that joins from
// "beginning" while another takes the group's snapshot makes that
// snapshot's commit fail: the snapshot member's stream ends aborted,
// which its client reports as ErrSnapshotInterrupted (never resumed),
// and it never joins with the snapshot's end as the group's positions.
func TestGroupSnapshotMemberJoinsMidway(t *testing.T) {
	t.Parallel()
	url := servertest.Start(t, func(c *config.Config) { c.API.SnapshotChunkKeys = 32 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
	prod := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	events := wailv1connect.NewEventServiceClient(http.DefaultClient, url)
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "j", Partitions: 2})); err != nil {
		t.Fatal(err)
	}
	const keys = 1000
	writeLargeRows(ctx, t, prod, "j", keys)
	snap, err := client.NewConsumer(ctx, events, client.ConsumerConfig{Table: "j", Group: "g", Member: "snap", Start: "snapshot"})
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if m, err := snap.Next(ctx); err != nil || !m.Snapshot {
		t.Fatalf("first message: %v, %v; want a snapshot row", m, err)
	}
	// snap reads no more for now: its snapshot waits. Another member
	// joins from "beginning".
	granted := make(chan struct{}, 1)
	other, err := client.NewConsumer(ctx, events, client.ConsumerConfig{Table: "j", Group: "g", Member: "other",
		OnPartitions: func(g []*wailv1.PartitionGrant, _ []int32) {
			if len(g) > 0 {
				select {
				case granted <- struct{}{}:
				default:
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	octx, ostop := context.WithCancel(ctx)
	odone := make(chan struct{})
	go func() {
		defer close(odone)
		for {
			m, err := other.Next(octx)
			if err != nil {
				return
			}
			_ = other.Ack(octx, m)
		}
	}()
	defer func() { ostop(); <-odone }()
	select {
	case <-granted:
	case <-ctx.Done():
		t.Fatal("the other member was never granted partitions")
	}
	d, err := events.DescribeGroup(ctx, connect.NewRequest(&wailv1.DescribeGroupRequest{Table: "j", Group: "g"}))
	if err != nil || d.Msg.SnapshotMember != "snap" || d.Msg.SnapshotEvents >= keys {
		t.Fatalf("describe while both are in: %v, %v; want snap mid-snapshot", d, err)
	}
	rows := 1
	for {
		m, err := snap.Next(ctx)
		if err != nil {
			if !errors.Is(err, client.ErrSnapshotInterrupted) || connect.CodeOf(err) != connect.CodeAborted {
				t.Fatalf("after %d rows: %v; want ErrSnapshotInterrupted (aborted)", rows, err)
			}
			break
		}
		if !m.Snapshot {
			t.Fatalf("after %d rows: an event not of the snapshot, %v: the snapshot's end was committed though another member had joined", rows, m)
		}
		rows++
	}
	t.Logf("the snapshot member got %d rows, then aborted", rows)
}
