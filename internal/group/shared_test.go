package group

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// memCatalog is a store catalog in memory (compare-and-set entries).
type memCatalog struct {
	mu sync.Mutex
	m  map[string][]byte
}

// memSwapper is one process's access to a memCatalog; cut makes it fail
// (the process cannot reach the store).
type memSwapper struct {
	c   *memCatalog
	cut atomic.Bool
}

var errCut = errors.New("store unreachable")

func (s *memSwapper) SwapTable(_ context.Context, name string, old, new []byte) ([]byte, bool, error) {
	if s.cut.Load() {
		return nil, false, errCut
	}
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	cur := s.c.m[name]
	if !bytes.Equal(cur, old) || (cur == nil) != (old == nil) {
		return cur, false, nil
	}
	if new == nil {
		delete(s.c.m, name)
	} else {
		s.c.m[name] = new
	}
	return new, true, nil
}

// owned follows a session's grants and revocations.
type owned map[int32]uint64

// until reads s's messages into o until cond holds (batches are passed
// to batch, if set); it fails after 10s.
func until(t *testing.T, s *Session, o owned, batch func(Message), cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !cond() {
		m, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("waiting: %v (owned %v)", err, o)
		}
		for _, g := range m.Granted {
			o[g.Partition] = g.Epoch
		}
		for _, p := range m.Revoked {
			delete(o, p)
		}
		if m.Granted == nil && m.Revoked == nil && batch != nil {
			batch(m)
		}
	}
}

// TestSharedCut: two processes (Groups) share a group through one
// catalog. Their members split the partitions; then process A cannot
// reach the store: once its lease lapses its member's batches and
// acknowledgements are refused (fencing), and only then does B's member
// get A's partition, at the committed offset, under a newer epoch. When
// A reaches the store again its member gets its share back.
func TestSharedCut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	tb := table(t, l, 2, 5)
	const lease = time.Second
	cat := &memCatalog{m: map[string][]byte{}}
	swA, swB := &memSwapper{c: cat}, &memSwapper{c: cat}
	logger := slog.New(slog.DiscardHandler)
	h := health.NewRegistry(nil)
	// The members' lease is longer than the processes': a's stream is not
	// read while b takes its partition, and a member whose stream takes no
	// message for its lease is ended (TestStuckStreamExpires).
	A := New(l, time.Minute).Share(Sharing{Store: swA, Process: "A", Lease: lease, Logger: logger, Health: h})
	defer A.Close()
	B := New(l, time.Minute).Share(Sharing{Store: swB, Process: "B", Lease: lease, Logger: logger})
	defer B.Close()

	a, err := A.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	oa, ob := owned{}, owned{}
	until(t, a, oa, nil, func() bool { return len(oa) == 2 })
	b, err := B.Join(ctx, tb, "g", "b", false)
	if err != nil {
		t.Fatal(err)
	}
	until(t, a, oa, nil, func() bool { return len(oa) == 1 })
	until(t, b, ob, nil, func() bool { return len(ob) == 1 })
	var pa int32
	for p := range oa {
		pa = p
	}
	if _, ok := ob[pa]; ok {
		t.Fatalf("partition %d owned by both: a %v, b %v", pa, oa, ob)
	}
	// a acknowledges a batch, takes a second and does not.
	var first, second Message
	appendRecords(t, l, 40)
	until(t, a, oa, func(m Message) {
		if m.Partition == pa && len(m.Records) > 0 && a.Check(m) {
			first = m
		}
	}, func() bool { return first.Records != nil })
	if refused, err := A.Ack(ctx, tb, "g", "a", []Ack{{pa, first.Epoch, first.Next}}); err != nil || len(refused) > 0 {
		t.Fatalf("ack of a batch: %v %v", refused, err)
	}
	appendRecords(t, l, 40)
	until(t, a, oa, func(m Message) {
		if m.Partition == pa && len(m.Records) > 0 && a.Check(m) {
			second = m
		}
	}, func() bool { return second.Records != nil })

	swA.cut.Store(true)
	cutAt := time.Now()
	// B takes a's partition only after A's lease lapsed, at what a
	// acknowledged, under a newer epoch.
	var got Message
	until(t, b, ob, func(m Message) {
		if m.Partition == pa && got.Records == nil && b.Check(m) {
			got = m
		}
	}, func() bool { return got.Records != nil })
	if waited := time.Since(cutAt); waited < trusted(lease) {
		t.Fatalf("b got a's partition %s after A was cut, before A's lease could lapse (%s)", waited, trusted(lease))
	}
	if ob[pa] <= first.Epoch || got.Records[0].Offset != first.Next {
		t.Fatalf("b's partition %d: epoch %d (a's %d), first offset %d, want %d", pa, ob[pa], first.Epoch, got.Records[0].Offset, first.Next)
	}
	if h.State() != health.Degraded || !strings.Contains(h.Report().Text(), "cannot sync with the other processes") {
		t.Fatalf("A's health while cut from the store: %s", h.Report().Text())
	}
	// A's member: refused.
	refused, err := A.Ack(ctx, tb, "g", "a", []Ack{{pa, second.Epoch, second.Next}})
	if err != nil || !errors.Is(refused[pa], ErrNotOwner) {
		t.Fatalf("a's acknowledgement after A's lease lapsed: %v %v, want %v", refused, err, ErrNotOwner)
	}
	if a.Check(Message{Partition: pa, Epoch: second.Epoch, Next: second.Next + 1, Records: second.Records}) {
		t.Fatal("a batch of a's lapsed partition passed Check")
	}
	if refused, err := B.Ack(ctx, tb, "g", "b", []Ack{{pa, got.Epoch, got.Next}}); err != nil || len(refused) > 0 {
		t.Fatalf("b's acknowledgement: %v %v", refused, err)
	}

	// A reaches the store again: a gets one partition back.
	until(t, a, oa, nil, func() bool { _, ok := oa[pa]; return !ok }) // the revocation at the lapse
	swA.cut.Store(false)
	until(t, a, oa, nil, func() bool { return len(oa) == 1 })
	until(t, b, ob, nil, func() bool { return len(ob) == 1 })
	for p := range oa {
		if _, ok := ob[p]; ok {
			t.Fatalf("partition %d owned by both after A came back: a %v, b %v", p, oa, ob)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); h.State() != health.OK; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("A's health once it syncs again: %s", h.Report().Text())
		}
	}
	// A leaves on Close: b gets every partition before a lease passes.
	left := time.Now()
	A.Close()
	until(t, b, ob, nil, func() bool { return len(ob) == 2 })
	if d := time.Since(left); d >= lease {
		t.Fatalf("b got every partition %s after A closed: not before A's lease (%s) could expire; A did not leave the entry", d, lease)
	}
}

// appendRecords appends n records with values to topic "ev".
func appendRecords(t *testing.T, l intentlog.Log, n int) {
	t.Helper()
	var recs []*intentlog.Record
	for i := range n {
		recs = append(recs, &intentlog.Record{Key: fmt.Appendf(nil, "more%d", i), Value: []byte("v")})
	}
	if err := l.Append(context.Background(), "ev", recs); err != nil {
		t.Fatal(err)
	}
}

// slowCommits is a log whose commits, once slow is set, land only after
// a pause (a process paused mid-commit, whose request the bus applies).
type slowCommits struct {
	intentlog.Log
	slow  atomic.Bool
	pause time.Duration
}

func (l *slowCommits) Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error {
	if l.slow.Load() {
		time.Sleep(l.pause)
		return l.Log.Commit(context.Background(), group, topic, offsets)
	}
	return l.Log.Commit(ctx, group, topic, offsets)
}

// TestSharedCommitPastLease: an acknowledgement whose commit returns after
// the process's lease could lapse is refused, though the bus took it:
// another process may have read the committed offsets before, so only
// commits that returned within the lease are accepted.
func TestSharedCommitPastLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const lease = time.Second
	l := &slowCommits{Log: openLog(t), pause: lease}
	tb := table(t, l, 1, 5)
	g := New(l, time.Minute).Share(Sharing{Store: &memSwapper{c: &memCatalog{m: map[string][]byte{}}}, Process: "A", Lease: lease,
		Logger: slog.New(slog.DiscardHandler)})
	defer g.Close()
	a, err := g.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	o := owned{}
	var batch Message
	until(t, a, o, func(m Message) {
		if len(m.Records) > 0 && a.Check(m) {
			batch = m
		}
	}, func() bool { return batch.Records != nil })
	l.slow.Store(true)
	refused, err := g.Ack(ctx, tb, "g", "a", []Ack{{0, batch.Epoch, batch.Next}})
	if err != nil || !errors.Is(refused[0], ErrNotOwner) {
		t.Fatalf("an acknowledgement whose commit returned after the lease: %v %v, want %v", refused, err, ErrNotOwner)
	}
	// The member gets the partition again under a new epoch.
	l.slow.Store(false)
	until(t, a, o, nil, func() bool { return o[0] > batch.Epoch })
}

// TestSharedLateStartCommit: two processes join a new group at once, and
// the first one's commits are slow (well within its lease). The start of
// the group's partitions must not land over what the other process's
// member acknowledged meanwhile: only the process that claims a partition
// commits its start, before delivering it.
func TestSharedLateStartCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const lease, pause = time.Second, 400 * time.Millisecond
	base := openLog(t)
	tb := table(t, base, 2, 5)
	slow := &slowCommits{Log: base, pause: pause}
	slow.slow.Store(true)
	cat := &memCatalog{m: map[string][]byte{}}
	share := func(proc string) Sharing {
		return Sharing{Store: &memSwapper{c: cat}, Process: proc, Lease: lease, Logger: slog.New(slog.DiscardHandler)}
	}
	A := New(base, time.Minute).Share(share("A"))
	B := New(slow, time.Minute).Share(share("B"))
	defer A.Close()
	defer B.Close()
	joined := make(chan error, 1)
	go func() {
		_, err := B.Join(ctx, tb, "g", "b", false)
		joined <- err
	}()
	time.Sleep(pause / 4) // B is in its join
	a, err := A.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	o := owned{}
	acked := map[int32]int64{}
	until(t, a, o, func(m Message) {
		if len(m.Records) > 0 && a.Check(m) {
			if r, err := A.Ack(ctx, tb, "g", "a", []Ack{{m.Partition, m.Epoch, m.Next}}); err == nil && len(r) == 0 {
				acked[m.Partition] = m.Next
			}
		}
	}, func() bool { return len(acked) > 0 })
	if err := <-joined; err != nil {
		t.Fatal(err)
	}
	slow.slow.Store(false)
	time.Sleep(2 * pause) // a commit of B's still in flight lands
	c, err := base.Committed(ctx, LogGroup("g"), tb.Topic)
	if err != nil {
		t.Fatal(err)
	}
	for p, n := range acked {
		if c[p] < n {
			t.Fatalf("partition %d acknowledged up to %d (accepted), committed now %d: a start commit landed over it", p, n, c[p])
		}
	}
}
