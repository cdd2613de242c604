package group

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// renewFailLog is a fencing log whose committers' renewals fail while
// fail is set (the brokers refuse them), after the fence check: a fenced
// committer's renewal fails with ErrFenced, as Kafka's does.
type renewFailLog struct {
	*fencingLog
	fail *atomic.Bool
}

func (l renewFailLog) FencePartition(ctx context.Context, group, topic string, p int32) (intentlog.FencedCommitter, error) {
	c, err := l.fencingLog.FencePartition(ctx, group, topic, p)
	if err != nil {
		return nil, err
	}
	return failRenewer{c.(*fakeCommitter), l.fail}, nil
}

type failRenewer struct {
	*fakeCommitter
	fail *atomic.Bool
}

var errRenewRefused = errors.New("renewal refused (injected)")

func (c failRenewer) Renew(ctx context.Context, at intentlog.EpochOffset) error {
	c.l.st.mu.Lock()
	fenced := c.l.st.epoch[c.k] != c.epoch
	c.l.st.mu.Unlock()
	if !fenced && c.fail.Load() {
		return errRenewRefused
	}
	return c.fakeCommitter.Renew(ctx, at)
}

// TestCommitRefreshNoFalseRecovery: a shared group's refreshes fail (the
// warning is logged), and then the process commits nothing more for the
// partition: its committer was fenced by another process (the refresh
// drops it), or its lease on the group lapsed (the store is unreachable;
// the refresh is skipped). Neither is a commit: the log must not say the
// positions are committed again. Before, a refresh that committed nothing
// returned no error, and the next report logged the recovery.
func TestCommitRefreshNoFalseRecovery(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"fenced", "lapsed"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			base := openLog(t)
			tb := table(t, base, 1, 5)
			st := &fenceState{epoch: map[string]int{}}
			var fail atomic.Bool
			fail.Store(true)
			var logs bytes.Buffer
			var logMu sync.Mutex
			logger := slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, nil))
			all := func() string {
				logMu.Lock()
				defer logMu.Unlock()
				return logs.String()
			}
			logged := func(s string) bool { return strings.Contains(all(), s) }
			cat := &memCatalog{m: map[string][]byte{}}
			sw := &memSwapper{c: cat}
			G := New(renewFailLog{&fencingLog{Log: base, st: st}, &fail}, time.Minute).WithCommitRefresh(50 * time.Millisecond).
				Share(Sharing{Store: sw, Process: "A", Lease: time.Second, Logger: logger})
			defer G.Close()
			a, err := G.Join(ctx, tb, "g", "a", false)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Leave()
			oa := owned{}
			until(t, a, oa, nil, func() bool { return len(oa) == 1 })
			for !logged("could not commit again") {
				if ctx.Err() != nil {
					t.Fatal("the failing refresh was not reported")
				}
				time.Sleep(5 * time.Millisecond)
			}
			switch how {
			case "fenced": // another process (or a reset) fences the partition
				if _, err := (&fencingLog{Log: base, st: st}).FencePartition(ctx, LogGroup("g"), tb.Topic, 0); err != nil {
					t.Fatal(err)
				}
			case "lapsed":
				sw.cut.Store(true)
			}
			time.Sleep(2500 * time.Millisecond) // past the lease; many refresh ticks
			if logged("its positions are committed again") {
				t.Fatalf("the recovery of the refreshes was logged, yet no refresh committed (%s):\n%s", how, all())
			}
		})
	}
}
