package eventbus

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog/kafka"
)

// memberEnv runs TestGroupMemberProcess as a group member: "url table
// group member mode" (mode: ack, or hang: never acknowledge, so that its
// lease expires whenever it owns a partition with events).
const memberEnv = "WAIL_TEST_GROUP_MEMBER"

// TestGroupMemberProcess is the child process of TestGroupMembersKilled:
// a member that prints each event it gets ("E unixnano partition offset
// epoch key version") and each acknowledgement once committed ("A
// unixnano partition epoch next"), acknowledging every third event of a
// partition and whatever is pending when the stream is idle for 50ms.
// exitWhenOrphaned ends a child process of these tests once its parent
// is gone: a test binary killed mid-test (a timeout, a mutant's run) left
// a member stalled in select {} running for hours.
func exitWhenOrphaned() {
	parent := os.Getppid()
	for range time.Tick(500 * time.Millisecond) {
		if os.Getppid() != parent {
			os.Exit(3)
		}
	}
}

// ExitWhenOrphaned is exitWhenOrphaned for the external test package's
// child processes (group_snapshot_test.go).
var ExitWhenOrphaned = exitWhenOrphaned

func TestGroupMemberProcess(t *testing.T) {
	spec := os.Getenv(memberEnv)
	if spec == "" {
		t.Skip("the child process of TestGroupMembersKilled")
	}
	go exitWhenOrphaned()
	f := strings.Fields(spec)
	url, table, grp, member, mode := f[0], f[1], f[2], f[3], f[4]
	c := wailv1connect.NewEventServiceClient(http.DefaultClient, url)
	ctx := context.Background()
	for consumeOnce(ctx, c, table, grp, member, mode) {
		fmt.Println("EXPIRED") // a slow member on a loaded machine: join again, as a consumer would
	}
}

// consumeOnce is one membership of TestGroupMemberProcess; it reports
// whether the lease of a member that acknowledges expired.
func consumeOnce(ctx context.Context, c wailv1connect.EventServiceClient, table, grp, member, mode string) bool {
	s, err := c.Consume(ctx, connect.NewRequest(&wailv1.ConsumeRequest{Table: table, Group: grp, Member: member}))
	if err != nil {
		fmt.Printf("END %v\n", err)
		return false
	}
	msgs := make(chan *wailv1.ConsumeResponse)
	go func() {
		defer close(msgs)
		for s.Receive() {
			msgs <- s.Msg()
		}
	}()
	pending := map[int32]*wailv1.PartitionAck{}
	count := map[int32]int{}
	events := 0
	ack := func() {
		if len(pending) == 0 || mode == "hang" {
			return
		}
		req := &wailv1.AckRequest{Table: table, Group: grp, Member: member}
		for _, a := range pending {
			req.Acks = append(req.Acks, a)
		}
		resp, err := c.Ack(ctx, connect.NewRequest(req))
		if err != nil {
			clear(pending)
			return // not a member any more (its lease expired): the stream ends too
		}
		refused := map[int32]bool{}
		for _, r := range resp.Msg.Refused {
			refused[r.Partition] = true
		}
		for _, a := range req.Acks {
			if !refused[a.Partition] {
				fmt.Printf("A %d %d %d %d\n", time.Now().UnixNano(), a.Partition, a.Epoch, a.Next)
			}
		}
		clear(pending)
	}
	idle := time.NewTicker(50 * time.Millisecond)
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				if connect.CodeOf(s.Err()) == connect.CodeAborted && mode != "hang" {
					return true
				}
				fmt.Printf("END %v\n", s.Err())
				return false
			}
			for _, p := range m.Revoked {
				delete(pending, p)
			}
			if m.Event == nil {
				continue
			}
			events++
			fmt.Printf("E %d %d %d %d %s %d\n", time.Now().UnixNano(), m.Partition, m.Offset, m.Epoch, m.Event.Key, m.Event.Version)
			pending[m.Partition] = &wailv1.PartitionAck{Partition: m.Partition, Epoch: m.Epoch, Next: m.Next}
			if count[m.Partition]++; count[m.Partition]%3 == 0 {
				ack()
			}
		case <-idle.C:
			ack()
		}
	}
}

// line is one line a member printed.
type line struct {
	member  string
	kind    byte // 'E' or 'A'
	at      int64
	p       int32
	off     int64 // E: the event's offset; A: next
	epoch   uint64
	key     string
	version uint64
}

// member is a child process in the group.
type memberProc struct {
	id  string
	cmd *exec.Cmd
}

// TestGroupMembersKilled: members of a group are real processes, some
// killed (SIGKILL) and some added while events are published, one stops
// acknowledging (its lease expires): every event is delivered at least
// once, per partition and ownership in offset order and per key in
// version order, and an event is delivered again only if no
// acknowledgement had covered it.
func TestGroupMembersKilled(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"embedded", "kafka"} {
		t.Run(kind, func(t *testing.T) { testGroupMembersKilled(t, kind) })
	}
}

func testGroupMembersKilled(t *testing.T, kind string) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rl := openRealLog(t, kind)
	bus := New(rl.log)
	table := "grp_" + uniq()
	const n = 6
	if err := bus.CreateTable(ctx, table, n, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rl.log.DeleteTopic(context.Background(), Topic(table)) })
	groups := group.New(rl.log, 3*time.Second)
	svc := NewService(bus, func(string) (int32, bool) { return n, true }).WithGroups(groups)
	mux := http.NewServeMux()
	_, closeAll := serveEvents(mux, svc, APILimits{})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer closeAll()

	var mu sync.Mutex
	var lines []line
	ended := map[string]string{}
	rejoined := 0 // members that acknowledge whose lease expired (a loaded machine)
	var readers sync.WaitGroup
	var members []*memberProc
	seq := 0
	hanger := ""
	start := func(mode string) {
		seq++
		id := fmt.Sprintf("m%d", seq)
		if mode == "hang" {
			hanger = id
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestGroupMemberProcess$")
		cmd.Env = append(os.Environ(), memberEnv+"="+strings.Join([]string{srv.URL, table, "g", id, mode}, " "))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		members = append(members, &memberProc{id: id, cmd: cmd})
		readers.Add(1)
		go func() {
			defer readers.Done()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				l, end, ok := parseLine(id, sc.Text())
				mu.Lock()
				switch {
				case sc.Text() == "EXPIRED":
					rejoined++
				case end != "":
					ended[id] = end
				case ok:
					lines = append(lines, l)
				}
				mu.Unlock()
			}
			cmd.Wait()
		}()
	}
	kill := func() {
		i := rand.IntN(len(members))
		if members[i].id == hanger { // it must live to see its lease expire
			i = (i + 1) % len(members)
		}
		m := members[i]
		members = append(members[:i], members[i+1:]...)
		m.cmd.Process.Signal(syscall.SIGKILL)
	}
	defer func() {
		for _, m := range members {
			m.cmd.Process.Signal(syscall.SIGKILL)
		}
		readers.Wait()
	}()

	// Publish while members come and go.
	// Each event published, by key and version (unique: a key's versions
	// increase), with where it went (partition -1: a transaction's, not
	// told).
	published := map[keyVersion][2]int64{}
	version := map[string]uint64{}
	pubDone := make(chan struct{})
	var pubErr error
	unsure := 0 // transactions that failed as the resolver's may (Kafka)
	publish := func(i int) error {
		var evs []intent.Event
		for j := range 8 {
			k := fmt.Sprintf("k%d", (i*8+j)%48)
			version[k] += 1 + uint64(j)
			e := intent.Event{Table: table, Key: []byte(k), Op: intent.Upsert, Version: version[k], Value: []byte("v")}
			if (i+j)%7 == 0 {
				e.Op, e.Value = intent.Delete, nil
			}
			evs = append(evs, e)
		}
		topic, recs, err := bus.Records(t.Context(), table, evs)
		if err != nil {
			return err
		}
		txn := rl.transact != nil && i%2 == 0
		if txn {
			err = rl.transact(ctx, topic, recs)
		} else {
			err = rl.log.Append(ctx, topic, recs)
		}
		if txn && err != nil && ctx.Err() == nil && (kafka.IsAborted(err) || errors.Is(err, kafka.ErrFenced)) && unsure < 5 {
			// As the resolver's: an aborted transaction or one whose
			// commit's outcome is unknown (a broker stalled past the
			// transaction timeout: "commit of unknown outcome: kafka:
			// fenced: INVALID_TXN_STATE", on a loaded machine); the
			// publisher joined again (openRealLog). Its events may or may
			// not be on the log: not counted; the next batch's versions
			// are higher.
			unsure++
			t.Logf("publish %d: %v (not counted; publishing on)", i, err)
			return nil
		}
		if err != nil {
			return err
		}
		mu.Lock()
		k := 0
		for _, r := range recs {
			if r.Value == nil {
				continue // a delete's tombstone
			}
			at := [2]int64{int64(r.Partition), r.Offset}
			if txn {
				at = [2]int64{-1, -1}
			}
			published[keyVersion{string(evs[k].Key), evs[k].Version}] = at
			k++
		}
		mu.Unlock()
		return nil
	}
	go func() {
		defer close(pubDone)
		for i := range 120 {
			if pubErr = publish(i); pubErr != nil {
				return
			}
			time.Sleep(40 * time.Millisecond)
		}
	}()
	for range 3 {
		start("ack")
	}
	kills, adds := 0, 0
	for step := 0; ; step++ {
		select {
		case <-pubDone:
		case <-time.After(600 * time.Millisecond):
			switch {
			case step == 2:
				start("hang") // stops acknowledging: its lease expires
			case step%2 == 0 && len(members) > 2:
				kill()
				kills++
			default:
				start("ack")
				adds++
			}
			continue
		}
		break
	}
	if pubErr != nil {
		t.Fatal(pubErr)
	}
	start("ack")
	start("ack")

	// Wait until every published event was delivered; deliveries counts
	// them all (again too).
	missing := func() (miss, deliveries int) {
		mu.Lock()
		defer mu.Unlock()
		got := map[keyVersion]bool{}
		for _, l := range lines {
			if l.kind == 'E' {
				got[keyVersion{l.key, l.version}] = true
				deliveries++
			}
		}
		for k := range published {
			if !got[k] {
				miss++
			}
		}
		return miss, deliveries
	}
	hung := func() bool { // the member that stopped acknowledging lost its lease
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(ended[hanger], "lease expired")
	}
	// The wait is bounded by progress, not by the clock: it fails after
	// stillLooks looks, 100 ms apart, that saw no new delivery (at least a
	// minute of a group whose members get nothing), or at ctx's end. A
	// minute of the clock from the end of publishing was used up on a
	// loaded machine (CI, load 10 on 2 cores) while the test process
	// barely ran: it failed with the events still in flight ("64 of 960
	// never delivered") once every member's lease had expired and they
	// were joining again.
	const stillLooks = 600
	still, lastDeliveries := 0, -1
	// A hanger that joined after the events were published (a loaded
	// machine starts processes slowly) owns partitions with nothing to
	// deliver: its lease expires only once they get events. Publish more
	// until it has.
	extra, lastExtra := 120, time.Now()
	for {
		miss, deliveries := missing()
		if miss == 0 && hung() {
			break
		}
		if deliveries != lastDeliveries {
			still, lastDeliveries = 0, deliveries
		}
		if !hung() && time.Since(lastExtra) > 500*time.Millisecond {
			if err := publish(extra); err != nil {
				t.Fatal(err)
			}
			extra, lastExtra = extra+1, time.Now()
		}
		if still++; still > stillLooks || ctx.Err() != nil {
			mu.Lock()
			why := ended[hanger]
			mu.Unlock()
			groupDiagnostics(t, groups, group.Table{Name: table, Topic: Topic(table), Partitions: n}, &mu, &lines, published, ended, &rejoined, members)
			t.Fatalf("%d of %d events never delivered (%d looks without a new delivery; %v); the member that stopped acknowledging ended with %q",
				miss, len(published), still-1, ctx.Err(), why)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, m := range members {
		m.cmd.Process.Signal(syscall.SIGKILL)
	}
	members = nil
	readers.Wait()

	mu.Lock()
	defer mu.Unlock()
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].at < lines[j].at })
	if len(lines) == 0 {
		t.Fatal("no line from any member")
	}
	dups := checkGroupDeliveries(t, lines)
	expired := rejoined
	for _, why := range ended {
		if strings.Contains(why, "lease expired") {
			expired++
		}
	}
	deliveries := 0
	for _, l := range lines {
		if l.kind == 'E' {
			deliveries++
		}
	}
	t.Logf("%s: %d events published, %d deliveries, %d of them again; %d members killed, %d added mid-run, %d leases expired",
		kind, len(published), deliveries, dups, kills, adds, expired)
	// (On a loaded machine members that do acknowledge may expire too.)
	if kills < 2 || adds < 2 || !strings.Contains(ended[hanger], "lease expired") || dups == 0 {
		t.Fatalf("the run did not exercise the faults: %d kills, %d adds, %d redeliveries; the member that stopped acknowledging ended with %q",
			kills, adds, dups, ended[hanger])
	}
}

// checkGroupDeliveries checks the lines and returns how many deliveries
// repeated another. Epochs increase with every change of a partition's
// owner, and an owner starts at the committed offset, which covers every
// acknowledgement committed under an earlier epoch: a delivery under
// epoch e of an offset that an acknowledgement under an epoch below e
// covered is a duplicate of an acknowledged event. (A delivery under an
// older epoch may reach its member after a newer owner acknowledged: it
// was sent before the partition moved.)
func checkGroupDeliveries(t *testing.T, lines []line) int {
	t.Helper()
	type run struct {
		member string
		p      int32
		epoch  uint64
	}
	type ack struct {
		epoch uint64
		next  int64
	}
	acks := map[int32][]ack{}
	for _, l := range lines {
		if l.kind == 'A' {
			acks[l.p] = append(acks[l.p], ack{l.epoch, l.off})
		}
	}
	lastOff := map[run]int64{}
	lastVersion := map[run]map[string]uint64{}
	seen := map[[2]int64]bool{}
	dups := 0
	for _, l := range lines {
		if l.kind != 'E' {
			continue
		}
		r := run{l.member, l.p, l.epoch}
		if o, ok := lastOff[r]; ok && l.off <= o {
			t.Fatalf("%s: partition %d epoch %d: offset %d after %d", l.member, l.p, l.epoch, l.off, o)
		}
		lastOff[r] = l.off
		if lastVersion[r] == nil {
			lastVersion[r] = map[string]uint64{}
		}
		if v := lastVersion[r][l.key]; l.version <= v {
			t.Fatalf("%s: key %s: version %d after %d", l.member, l.key, l.version, v)
		}
		lastVersion[r][l.key] = l.version
		for _, a := range acks[l.p] {
			if a.epoch < l.epoch && a.next > l.off {
				t.Fatalf("%s: partition %d offset %d delivered under epoch %d, though acknowledged up to %d under epoch %d",
					l.member, l.p, l.off, l.epoch, a.next, a.epoch)
			}
		}
		k := [2]int64{int64(l.p), l.off}
		if seen[k] {
			dups++
		}
		seen[k] = true
	}
	return dups
}

func parseLine(member, s string) (line, string, bool) {
	if rest, ok := strings.CutPrefix(s, "END "); ok {
		return line{}, rest, false
	}
	f := strings.Fields(s)
	num := func(i int) int64 { n, _ := strconv.ParseInt(f[i], 10, 64); return n }
	switch {
	case len(f) == 7 && f[0] == "E":
		v, _ := strconv.ParseUint(f[6], 10, 64)
		return line{member: member, kind: 'E', at: num(1), p: int32(num(2)), off: num(3), epoch: uint64(num(4)), key: f[5], version: v}, "", true
	case len(f) == 5 && f[0] == "A":
		return line{member: member, kind: 'A', at: num(1), p: int32(num(2)), epoch: uint64(num(3)), off: num(4)}, "", true
	}
	return line{}, "", false
}

// keyVersion is an event published.
type keyVersion struct {
	key     string
	version uint64
}

// groupDiagnostics logs, for a run whose events were not all delivered,
// what each member ended with, the group as the server sees it, and per
// partition the events missing and the last delivery and acknowledgement.
func groupDiagnostics(t *testing.T, groups *group.Groups, tb group.Table, mu *sync.Mutex, linesp *[]line, published map[keyVersion][2]int64,
	ended map[string]string, rejoined *int, members []*memberProc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ids, parts, err := groups.Describe(ctx, tb, "g")
	t.Logf("group: members %v (err %v)", ids, err)
	for _, p := range parts {
		t.Logf("  partition %d: owner %q epoch %d committed %d delivered %d end %d unacked since %v revoking %v",
			p.Partition, p.Owner, p.Epoch, p.Committed, p.Delivered, p.End, p.Unacked, p.Revoking)
	}
	mu.Lock()
	defer mu.Unlock()
	lines := *linesp
	var alive []string
	for _, m := range members {
		alive = append(alive, m.id)
	}
	t.Logf("member processes alive %v; %d joined again after their lease expired", alive, *rejoined)
	for id, why := range ended {
		t.Logf("  %s ended: %s", id, why)
	}
	got := map[keyVersion]bool{}
	lastE, lastA := map[int32]line{}, map[int32]line{}
	for _, l := range lines {
		if l.kind == 'E' {
			got[keyVersion{l.key, l.version}] = true
			if l.at > lastE[l.p].at {
				lastE[l.p] = l
			}
		} else if l.at > lastA[l.p].at {
			lastA[l.p] = l
		}
	}
	type span struct{ n, lo, hi int64 }
	miss := map[int64]*span{} // by partition (-1: a transaction's)
	for k, at := range published {
		if got[k] {
			continue
		}
		s := miss[at[0]]
		if s == nil {
			s = &span{lo: at[1], hi: at[1]}
			miss[at[0]] = s
		}
		s.n++
		s.lo, s.hi = min(s.lo, at[1]), max(s.hi, at[1])
	}
	for p, s := range miss {
		t.Logf("  partition %d: %d missing, offsets %d to %d; last delivery %+v; last acknowledgement %+v",
			p, s.n, s.lo, s.hi, lastE[int32(p)], lastA[int32(p)])
	}
}
