package kafka

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestTransactAfterFailedAbort: a transaction whose abort fails leaves
// the producer inside it; the next Transact ends it first instead of
// failing ("already in a transaction"), which would make the resolver
// leave and rejoin its group.
func TestTransactAfterFailedAbort(t *testing.T) {
	c, ctx, l, m, in, out := txnSetup(t, "heal")
	var err error
	rec := func(v string, size int) *intentlog.Record {
		return &intentlog.Record{Key: []byte(v), Value: make([]byte, size)}
	}

	// The abort's EndTxn fails once, after a produce failed (a record over
	// the limit).
	var endTxns int
	c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		endTxns++
		resp := req.ResponseKind().(*kmsg.EndTxnResponse)
		resp.Version = req.GetVersion()
		resp.ErrorCode = kerr.UnknownServerError.Code
		return resp, nil, true
	})
	err = m.Transact(ctx, 0, map[string][]*intentlog.Record{out: {rec("a", 1), rec("huge", 300<<10)}},
		map[string]map[int32]int64{in: {0: 5}})
	if err == nil || endTxns != 1 {
		t.Fatalf("transaction with a record over the limit and a failing abort: %v (%d EndTxn), want an error after one EndTxn", err, endTxns)
	}

	// The next transactions go through, and commit their offsets: the
	// first on the shard's other producer, the second on the one the
	// failed abort left inside its transaction.
	for i, v := range []string{"b", "c"} {
		if err := m.Transact(ctx, 0, map[string][]*intentlog.Record{out: {rec(v, 1)}},
			map[string]map[int32]int64{in: {0: int64(7 + i)}}); err != nil {
			if strings.Contains(err.Error(), "already in a transaction") {
				t.Fatalf("the failed abort left the producer in its transaction: %v", err)
			}
			t.Fatal(err)
		}
	}
	got, err := l.Committed(ctx, "g-"+in, in)
	if err != nil || got[0] != 8 {
		t.Fatalf("committed %v, %v; want 8", got, err)
	}
}

// TestTransactAfterUnknownCommit: a commit whose outcome is unknown (its
// EndTxn failed with an error that says neither committed nor aborted) on
// one of a shard's producers. The error is neither IsAborted nor
// ErrFenced (the resolver ends its membership on it); the next
// transaction runs on the shard's other producer and commits; the one
// after that runs on the first again, which the recovery abort left
// usable; and a read_committed reader sees the committed records in order
// and nothing of the unknown one, which that abort ended.
func TestTransactAfterUnknownCommit(t *testing.T) {
	c, ctx, l, m, in, out := txnSetup(t, "unknown")
	var err error
	transact := func(v string, offset int64) error {
		return m.Transact(ctx, 0, map[string][]*intentlog.Record{out: {{Key: []byte(v), Value: []byte(v)}}},
			map[string]map[int32]int64{in: {0: offset}})
	}
	if err := transact("first", 1); err != nil {
		t.Fatal(err)
	}

	// The next commit's EndTxn answers an error of unknown outcome, once.
	var commits int
	c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if !req.(*kmsg.EndTxnRequest).Commit {
			c.KeepControl()
			return nil, nil, false
		}
		commits++
		resp := req.ResponseKind().(*kmsg.EndTxnResponse)
		resp.Version = req.GetVersion()
		resp.ErrorCode = kerr.UnknownServerError.Code
		return resp, nil, true
	})
	err = transact("unknown", 2)
	if err == nil || IsAborted(err) || errors.Is(err, ErrFenced) || commits != 1 {
		t.Fatalf("commit of unknown outcome: %v (%d commits refused), want an error neither aborted nor fenced", err, commits)
	}
	if !strings.Contains(err.Error(), "unknown outcome") {
		t.Fatalf("error %q does not say the outcome is unknown", err)
	}

	// The other producer of the shard: its records become visible, so the
	// recovery abort ended the unknown transaction (an open one would
	// hold the stable offset, and this read, until the transaction
	// timeout of 10 s, past the read's 5 s).
	if err := transact("second", 3); err != nil {
		t.Fatalf("transaction after the unknown commit: %v", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if vals := readValues(t, rctx, l, out, 0); !slices.Equal(vals, []string{"first", "second"}) {
		t.Fatalf("read_committed sees %q, want first, second", vals)
	}
	// Then the first producer again.
	if err := transact("third", 4); err != nil {
		t.Fatalf("transaction on the first producer again: %v", err)
	}
	got, err := l.Committed(ctx, "g-"+in, in)
	if err != nil || got[0] != 4 {
		t.Fatalf("committed %v, %v; want 4", got, err)
	}
	if vals := readValues(t, ctx, l, out, 0); !slices.Equal(vals, []string{"first", "second", "third"}) {
		t.Fatalf("read_committed sees %q, want first, second, third", vals)
	}
}

// txnSetup starts a one-broker fake cluster with topics <prefix>-in and
// <prefix>-out (one partition each, 256 KiB records at most) and a member
// that owns the input partition.
func txnSetup(t *testing.T, prefix string) (*kfake.Cluster, context.Context, *Log, *Member, string, string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := testCtx(t, 60*time.Second)
	l := openLog(t, c.ListenAddrs(), func(o *Options) { o.MaxMessageBytes = 256 << 10 })
	in, out := topicName(prefix+"-in"), topicName(prefix+"-out")
	for _, topic := range []string{in, out} {
		if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	m, a := join(t, l, "g-"+in, "one", in)
	t.Cleanup(func() { _ = m.Close(ctx) })
	waitFor(t, "the member to own the partition", func() bool { return a.count() == 1 })
	return c, ctx, l, m, in, out
}
