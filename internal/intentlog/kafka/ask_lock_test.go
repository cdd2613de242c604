package kafka

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// askMember joins a member of two shards holding both partitions of a
// new topic in, and returns it with in and a topic out to write to.
func askMember(t *testing.T, ctx context.Context, prefix string) (*Member, string, string) {
	t.Helper()
	brokers := realBrokers(t)
	j := newJanitor(t, brokers)
	l := openLog(t, brokers, nil)
	in, out := topicName(prefix+"-in"), topicName(prefix+"-out")
	for topic, n := range map[string]int32{in: 2, out: 1} {
		j.add(topic)
		if err := l.CreateTopic(ctx, topic, n, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	a := &assignments{owned: map[int32]bool{}}
	m, err := l.Join(MemberOptions{Group: "g-" + in, InstanceID: "one", Topics: []string{in}, Producers: 2,
		OnAssigned: a.assigned, OnRevoked: a.revoked, SessionTimeout: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	waitFor(t, "both partitions assigned", func() bool { return a.count() == 2 })
	return m, in, out
}

// TestOffsetsQuestionHoldsNoLock: while a transaction asks the cluster
// whether TxnOffsetCommit adds the offsets to the transaction itself
// (offsetsAddImplicitly, an ApiVersions request) and the answer is slow
// to come, the member's other transactions and offset commits go on (with
// AddOffsetsToTxn), and the asking one too, past a bound well within its
// own time. Before, the question held the member's metadata lock, which
// every transaction's topic id check takes: all of them waited for it.
func TestOffsetsQuestionHoldsNoLock(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	m, in, out := askMember(t, ctx, "asklock")
	release := make(chan struct{})
	asking := make(chan struct{}, 1)
	var asked atomic.Int32
	m.askHook = func(ctx context.Context) error {
		asked.Add(1)
		select {
		case asking <- struct{}{}:
		default:
		}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var once sync.Once
	done := func() { once.Do(func() { close(release) }) }
	t.Cleanup(done)
	recs := map[string][]*intentlog.Record{out: {{Key: []byte("k"), Value: []byte("v")}}}
	first := make(chan error, 1)
	go func() { first <- m.Transact(ctx, 0, recs, map[string]map[int32]int64{in: {0: 1}}) }()
	select {
	case <-asking:
	case <-time.After(30 * time.Second):
		t.Fatal("the first transaction did not ask")
	}
	began := time.Now()
	other := make(chan error, 1)
	go func() {
		if err := m.Transact(ctx, 1, recs, map[string]map[int32]int64{in: {1: 1}}); err != nil {
			other <- err
			return
		}
		other <- m.Transact(ctx, 1, nil, map[string]map[int32]int64{in: {1: 2}}) // offsets alone
	}()
	select {
	case err := <-other:
		if err != nil {
			t.Errorf("a transaction of another shard while the question was asked: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Errorf("a transaction of another shard waited for the question of the first (%v after 3s)", <-other)
	}
	t.Logf("the other shard's transaction and commit took %v", time.Since(began))
	select {
	case err := <-first:
		if err != nil {
			t.Errorf("the asking transaction, its answer slow: %v", err)
		}
	case <-time.After(10 * time.Second):
		done()
		t.Errorf("the asking transaction waited for its answer (%v after release)", <-first)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("asked %d times, want 1 (the others answered no at once)", n)
	}
}

// TestOffsetsQuestionNotAskedAtEveryTransaction: a question that fails
// (a broker refusing ApiVersions) is not asked again by every
// transaction, which all commit with AddOffsetsToTxn meanwhile, but again
// once askRetry passed since; a question answered is asked no more.
func TestOffsetsQuestionNotAskedAtEveryTransaction(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	m, in, out := askMember(t, ctx, "askretry")
	var asked atomic.Int32
	var fail atomic.Bool
	fail.Store(true)
	m.askHook = func(context.Context) error {
		asked.Add(1)
		if fail.Load() {
			return errors.New("refused")
		}
		return nil
	}
	next := int64(0)
	transact := func() {
		t.Helper()
		next++
		recs := map[string][]*intentlog.Record{out: {{Key: []byte("k"), Value: []byte("v")}}}
		if err := m.Transact(ctx, 0, recs, map[string]map[int32]int64{in: {0: next}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		transact()
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("a failing question asked %d times by 5 transactions, want 1", n)
	}
	// Past askRetry: asked again, answered, and never again.
	m.metaMu.Lock()
	m.askFailed = time.Now().Add(-askRetry)
	m.metaMu.Unlock()
	fail.Store(false)
	for range 3 {
		transact()
	}
	if n := asked.Load(); n != 2 {
		t.Errorf("asked %d times in all, want 2 (once more after askRetry, then answered)", n)
	}
}
