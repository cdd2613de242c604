package kafka

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestRejoinUnderNewMemberID: a member A that the group dropped while it
// went on (its heartbeats never reached the coordinator: answered here)
// learns so only when it joins again, and franz-go then joins under a new
// member id without calling OnPartitionsLost. Between that join and the
// sync that tells A its partition now belongs to B, A still holds the
// partition, and its member id and generation are valid: a transaction or
// an offset commit of A's would be accepted by the coordinator, so two
// members would publish the partition's events and commit its offsets.
// They must fail, commit nothing, and A's partition must be revoked once
// the sync answers.
func TestRejoinUnderNewMemberID(t *testing.T) {
	r := newRejoin(t)
	c, ctx, l, group, in, out := r.c, r.ctx, r.l, r.group, r.in, r.out
	a, aOwns := r.join("a", 4*time.Second)
	waitFor(t, "A to own the partition", func() bool { return aOwns.count() == 1 })
	rec := &intentlog.Record{Key: []byte("k"), Value: []byte("from A")}
	if err := a.Transact(ctx, 0, map[string][]*intentlog.Record{out: {rec}}, map[string]map[int32]int64{in: {0: 3}}); err != nil {
		t.Fatal(err)
	}
	oldID, _ := a.cl.GroupMetadata()
	rebalance := r.dropSilently(a)
	waitFor(t, "the group to drop A", r.empty)
	b, bOwns := r.join("b", 6*time.Second)
	waitFor(t, "B to own the partition", func() bool { return bOwns.count() == 1 })
	if err := b.Transact(ctx, 0, map[string][]*intentlog.Record{out: {{Key: []byte("k"), Value: []byte("from B")}}},
		map[string]map[int32]int64{in: {0: 5}}); err != nil {
		t.Fatal(err)
	}
	if aOwns.count() != 1 {
		t.Fatal("A was told it lost the partition before it joined again; the test needs it not to know")
	}
	// Before it joins again, A commits under its old member id and
	// generation, which the coordinator refuses (KIP-447: the generation
	// fences a member the group replaced; its transactional ids are its
	// own, so no producer epoch fences it).
	errZombieTxn := a.Transact(ctx, 0, map[string][]*intentlog.Record{out: {{Key: []byte("k"), Value: []byte("zombie")}}},
		map[string]map[int32]int64{in: {0: 4}})
	errZombieCommit := a.Transact(ctx, 0, nil, map[string]map[int32]int64{in: {0: 4}})
	if errZombieTxn == nil || errZombieCommit == nil {
		t.Fatalf("A's transaction and offset commit under its old generation: %v; %v; want both refused", errZombieTxn, errZombieCommit)
	}

	// A joins again (under a new member id) and its sync is held: the
	// window in which A still holds the partition under valid membership.
	held, release := make(chan struct{}), make(chan struct{})
	var holding atomic.Bool
	c.ControlKey(int16(kmsg.SyncGroup), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		s := req.(*kmsg.SyncGroupRequest)
		bID, _ := b.cl.GroupMetadata()
		if s.MemberID == bID || !holding.CompareAndSwap(false, true) {
			return nil, nil, false
		}
		c.SleepControl(func() {
			close(held)
			<-release
		})
		return nil, nil, false
	})
	rebalance()
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("A's sync never came")
	}
	newID, _ := a.cl.GroupMetadata()
	if newID == oldID || newID == "" {
		close(release)
		t.Fatalf("A joined again under member id %q (was %q), want a new one", newID, oldID)
	}
	errTxn := a.Transact(ctx, 0, map[string][]*intentlog.Record{out: {{Key: []byte("k"), Value: []byte("zombie")}}},
		map[string]map[int32]int64{in: {0: 4}})
	errCommit := a.Transact(ctx, 0, nil, map[string]map[int32]int64{in: {0: 2}})
	close(release)
	if !IsAborted(errTxn) || !IsAborted(errCommit) {
		t.Fatalf("A's transaction and offset commit for B's partition while joining again: %v; %v; want both aborted", errTxn, errCommit)
	}
	waitFor(t, "A's partition to be revoked", func() bool { return aOwns.count() == 0 })
	if bOwns.count() != 1 {
		t.Fatal("B lost the partition")
	}
	got, err := l.Committed(ctx, group, in)
	if err != nil || got[0] != 5 {
		t.Fatalf("committed %v, %v; want B's 5", got, err)
	}
	if vals := readValues(t, ctx, l, out, 0); len(vals) != 2 || vals[1] != "from B" {
		t.Fatalf("read_committed sees %q, want A's and B's records only", vals)
	}
}

// TestRejoinKeepsPartition: a member the group dropped silently that joins
// again under a new member id and is given its partition back has its
// partition revoked and assigned again (the loops start over from the
// committed offsets: another member may have owned it meanwhile), and
// commits for it again once the sync answered.
func TestRejoinKeepsPartition(t *testing.T) {
	r := newRejoin(t)
	var events []string
	var mu sync.Mutex
	record := func(what string) func(map[string][]int32) {
		return func(m map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, fmt.Sprint(what, m[r.in]))
		}
	}
	a, err := r.l.Join(MemberOptions{Group: r.group, InstanceID: "a", Topics: []string{r.in},
		OnAssigned: record("assigned"), OnRevoked: record("revoked"), SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	seen := func(n int) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return len(events) >= n }
	}
	waitFor(t, "A to own the partition", seen(1))
	oldID, _ := a.cl.GroupMetadata()
	rebalance := r.dropSilently(a)
	waitFor(t, "the group to drop A", r.empty)
	rebalance()
	waitFor(t, "A to join again", seen(3))
	mu.Lock()
	got := slices.Clone(events)
	mu.Unlock()
	if want := []string{"assigned[0]", "revoked[0]", "assigned[0]"}; !slices.Equal(got, want) {
		t.Fatalf("callbacks %q, want %q", got, want)
	}
	if newID, _ := a.cl.GroupMetadata(); newID == oldID {
		t.Fatalf("A kept member id %q", newID)
	}
	if err := a.Transact(r.ctx, 0, map[string][]*intentlog.Record{r.out: {{Key: []byte("k"), Value: []byte("v")}}},
		map[string]map[int32]int64{r.in: {0: 9}}); err != nil {
		t.Fatal(err)
	}
	if got, err := r.l.Committed(r.ctx, r.group, r.in); err != nil || got[0] != 9 {
		t.Fatalf("committed %v, %v; want 9", got, err)
	}
}

// TestRevokeDrainCommits: in an ordinary cooperative rebalance (the same
// member id), OnRevoked is where the resolver's loops drain and commit
// their final offset; those commits, in a transaction or outside one, go
// through (the partition is forgotten only after OnRevoked).
func TestRevokeDrainCommits(t *testing.T) {
	c := newRejoin(t)
	ctx := c.ctx
	// a second partition so that a B joining takes one from A
	in2 := topicName("rejoin-in2")
	if err := c.l.CreateTopic(ctx, in2, 2, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var errs []error
	var a *Member
	owned := &assignments{owned: map[int32]bool{}}
	a, err := c.l.Join(MemberOptions{Group: c.group + "x", InstanceID: "a", Topics: []string{in2},
		OnAssigned: owned.assigned,
		OnRevoked: func(r map[string][]int32) {
			// the drain: commit the revoked partitions' final offsets,
			// then a transaction with a record and the offset
			for topic, ps := range r {
				for _, p := range ps {
					e1 := a.Transact(ctx, 0, nil, map[string]map[int32]int64{topic: {p: 1}})
					e2 := a.Transact(ctx, 0, map[string][]*intentlog.Record{c.out: {{Key: []byte("k"), Value: []byte("drain")}}},
						map[string]map[int32]int64{topic: {p: 2}})
					mu.Lock()
					errs = append(errs, e1, e2)
					mu.Unlock()
				}
			}
			owned.revoked(r)
		}, SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	waitFor(t, "A to own both partitions", func() bool { return owned.count() == 2 })
	b, err := c.l.Join(MemberOptions{Group: c.group + "x", InstanceID: "b", Topics: []string{in2}, SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	waitFor(t, "A to give one partition up", func() bool { return owned.count() == 1 })
	mu.Lock()
	defer mu.Unlock()
	for _, e := range errs {
		if e != nil {
			t.Errorf("drain commit in OnRevoked of an ordinary rebalance: %v", e)
		}
	}
}

// TestRejoinStaleDrainRefused: a member dropped silently, whose partition
// another member owned and committed meanwhile, joins again under a new
// id and is given the partition back. The stale loop's drain (in
// OnRevoked, before the partition is assigned again) must not commit its
// old offset: the committed offset would go back below the other
// member's.
func TestRejoinStaleDrainRefused(t *testing.T) {
	r := newRejoin(t)
	var mu sync.Mutex
	var drainErr error
	drained := false
	var a *Member
	revokes := 0
	owned := &assignments{owned: map[int32]bool{}}
	a, err := r.l.Join(MemberOptions{Group: r.group, InstanceID: "a", Topics: []string{r.in},
		OnAssigned: owned.assigned,
		OnRevoked: func(m map[string][]int32) {
			mu.Lock()
			revokes++
			mu.Unlock()
			// the stale loop drains: its final commit of its old offset 3
			err := a.Transact(r.ctx, 0, nil, map[string]map[int32]int64{r.in: {0: 3}})
			mu.Lock()
			drainErr, drained = err, true
			mu.Unlock()
			owned.revoked(m)
		}, SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	waitFor(t, "A to own the partition", func() bool { return owned.count() == 1 })
	if err := a.Transact(r.ctx, 0, nil, map[string]map[int32]int64{r.in: {0: 2}}); err != nil {
		t.Fatal(err)
	}
	rebalance := r.dropSilently(a)
	waitFor(t, "the group to drop A", r.empty)
	b, bOwns := r.join("b", 4*time.Second)
	waitFor(t, "B to own the partition", func() bool { return bOwns.count() == 1 })
	if err := b.Transact(r.ctx, 0, nil, map[string]map[int32]int64{r.in: {0: 5}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(r.ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B to leave", r.empty)
	rebalance()
	waitFor(t, "A's stale revoke", func() bool { mu.Lock(); defer mu.Unlock(); return drained })
	mu.Lock()
	if revokes != 1 || !IsAborted(drainErr) {
		t.Errorf("%d revokes, the stale drain's commit: %v; want one revoke, aborted", revokes, drainErr)
	}
	mu.Unlock()
	got, err := r.l.Committed(r.ctx, r.group, r.in)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != 5 {
		t.Fatalf("committed offset %d after A's stale loop drained; B had committed 5", got[0])
	}
}

// rejoin is a one-broker fake cluster with topics in and out (one
// partition each) and the group that consumes in.
type rejoin struct {
	t              *testing.T
	c              *kfake.Cluster
	ctx            context.Context
	l              *Log
	group, in, out string
}

func newRejoin(t *testing.T) *rejoin {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	r := &rejoin{t: t, c: c, ctx: testCtx(t, 90*time.Second), l: openLog(t, c.ListenAddrs(), nil),
		in: topicName("rejoin-in"), out: topicName("rejoin-out")}
	for _, topic := range []string{r.in, r.out} {
		if err := r.l.CreateTopic(r.ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r.group = "g-" + r.in
	return r
}

// join joins the group as id, tracking what the member owns.
func (r *rejoin) join(id string, session time.Duration) (*Member, *assignments) {
	a := &assignments{owned: map[int32]bool{}}
	m, err := r.l.Join(MemberOptions{Group: r.group, InstanceID: id, Topics: []string{r.in},
		OnAssigned: a.assigned, OnRevoked: a.revoked, SessionTimeout: session})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m, a
}

// dropSilently answers m's heartbeats here, so that the group drops m at
// its session timeout while m goes on; the returned function makes them
// answer that a rebalance is on, so that m joins again.
func (r *rejoin) dropSilently(m *Member) (rebalance func()) {
	id, _ := m.cl.GroupMetadata()
	var on atomic.Bool
	r.c.ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r.c.KeepControl()
		hb := req.(*kmsg.HeartbeatRequest)
		if hb.MemberID != id {
			return nil, nil, false
		}
		resp := hb.ResponseKind().(*kmsg.HeartbeatResponse)
		if on.Load() {
			resp.ErrorCode = kerr.RebalanceInProgress.Code
		}
		return resp, nil, true
	})
	return func() { on.Store(true) }
}

// empty reports whether the group has no members.
func (r *rejoin) empty() bool {
	gs, err := r.l.adm.DescribeGroups(r.ctx, r.group)
	return err == nil && gs[r.group].Err == nil && len(gs[r.group].Members) == 0
}

// TestLostPartitionNotAssignedAgain: a member told its partitions are
// lost (its heartbeat answered UNKNOWN_MEMBER_ID: the group dropped it and
// gave them to another member) joins again under a new member id and, given
// none of them, is not handed them again (as partitions held under an
// earlier member id are: owners) nor commits for them, which the
// coordinator would take from a valid member (KIP-447 checks the member,
// not the partition).
func TestLostPartitionNotAssignedAgain(t *testing.T) {
	r := newRejoin(t)
	ctx, in := r.ctx, r.in
	a, aOwns := r.join("a", 4*time.Second)
	waitFor(t, "A to own the partition", func() bool { return aOwns.count() == 1 })
	if err := a.Transact(ctx, 0, nil, map[string]map[int32]int64{in: {0: 3}}); err != nil {
		t.Fatal(err)
	}
	oldID, _ := a.cl.GroupMetadata()
	var lose atomic.Bool
	r.c.ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r.c.KeepControl()
		hb := req.(*kmsg.HeartbeatRequest)
		if hb.MemberID != oldID {
			return nil, nil, false
		}
		resp := hb.ResponseKind().(*kmsg.HeartbeatResponse)
		if lose.Load() {
			resp.ErrorCode = kerr.UnknownMemberID.Code
		}
		return resp, nil, true
	})
	waitFor(t, "the group to drop A", r.empty)
	b, bOwns := r.join("b", 6*time.Second)
	waitFor(t, "B to own the partition", func() bool { return bOwns.count() == 1 })
	if err := b.Transact(ctx, 0, nil, map[string]map[int32]int64{in: {0: 5}}); err != nil {
		t.Fatal(err)
	}
	lose.Store(true)
	waitFor(t, "A to lose the partition", func() bool { return aOwns.count() == 0 })
	waitFor(t, "A to join again", func() bool {
		id, _ := a.cl.GroupMetadata()
		gs, err := r.l.adm.DescribeGroups(ctx, r.group)
		return id != "" && id != oldID && err == nil && gs[r.group].State == "Stable" && len(gs[r.group].Members) == 2
	})
	time.Sleep(500 * time.Millisecond) // the sync's callbacks
	if aOwns.count() != 0 || bOwns.count() != 1 {
		t.Fatalf("after A joined again A owns %d, B %d; want B alone", aOwns.count(), bOwns.count())
	}
	if err := a.Transact(ctx, 0, nil, map[string]map[int32]int64{in: {0: 4}}); err == nil {
		t.Fatal("A committed for a partition it lost")
	}
	got, err := r.l.Committed(ctx, r.group, in)
	if err != nil || got[0] != 5 {
		t.Fatalf("committed %v, %v; want B's 5", got, err)
	}
}

// TestRevokedDuringTransaction: a partition revoked (or lost) while a
// transaction with its offset produces its records is not committed by
// it: the owners are checked again as the offsets go in, and the
// transaction aborts, though the coordinator would take them from the
// member (KIP-447 checks the member, not the partition).
func TestRevokedDuringTransaction(t *testing.T) {
	r := newRejoin(t)
	ctx, in, out := r.ctx, r.in, r.out
	a, aOwns := r.join("a", 4*time.Second)
	waitFor(t, "A to own the partition", func() bool { return aOwns.count() == 1 })
	if err := a.Transact(ctx, 0, map[string][]*intentlog.Record{out: {{Key: []byte("k"), Value: []byte("kept")}}},
		map[string]map[int32]int64{in: {0: 3}}); err != nil {
		t.Fatal(err)
	}
	a.afterProduce = func() { a.owners.revoke(map[string][]int32{in: {0}}) }
	err := a.Transact(ctx, 0, map[string][]*intentlog.Record{out: {{Key: []byte("k"), Value: []byte("revoked")}}},
		map[string]map[int32]int64{in: {0: 4}})
	if !IsAborted(err) {
		t.Fatalf("transaction of a partition revoked meanwhile: %v, want aborted", err)
	}
	got, err := r.l.Committed(ctx, r.group, in)
	if err != nil || got[0] != 3 {
		t.Fatalf("committed %v, %v; want 3", got, err)
	}
	if vals := readValues(t, ctx, r.l, out, 0); len(vals) != 1 || vals[0] != "kept" {
		t.Fatalf("read_committed sees %q, want the first transaction's record only", vals)
	}
}
