package catalog

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestTopicLocks: makings of one name go on together and hold its
// deletion; a deletion holds makings of its name only; a wait ends with
// its context, leaving nothing held; once every holder let go, the lock
// keeps nothing of the name (one entry per name ever seen grew without
// bound).
func TestTopicLocks(t *testing.T) {
	t.Parallel()
	var l topicLocks
	ctx := t.Context()
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 50*time.Millisecond) }
	for range 2 {
		if err := l.acquire(ctx, "a", false); err != nil {
			t.Fatal(err)
		}
	}
	sctx, cancel := short()
	if err := l.acquire(sctx, "a", true); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a deletion while makings hold the name: %v, want the deadline", err)
	}
	cancel()
	if err := l.acquire(ctx, "b", true); err != nil {
		t.Fatalf("a deletion of another name: %v", err)
	}
	sctx, cancel = short()
	if err := l.acquire(sctx, "b", false); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a making while a deletion holds the name: %v, want the deadline", err)
	}
	cancel()
	got := make(chan error, 1)
	go func() { got <- l.acquire(ctx, "a", true) }()
	l.release("a", false)
	select {
	case err := <-got:
		t.Fatalf("a deletion granted while a making holds the name: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	l.release("a", false)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	l.release("a", true)
	l.release("b", true)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.makers) != 0 || len(l.deleting) != 0 {
		t.Errorf("after every holder let go: makers %v, deleting %v; want nothing kept", l.makers, l.deleting)
	}
}
