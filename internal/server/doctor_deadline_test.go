package server

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
)

// slowStore answers each doctor check after delay (or fails when its
// context ends first). The embedded nil store.Store: doctor calls no other
// method.
type slowStore struct {
	store.Store
	delay time.Duration
}

func wait(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s slowStore) Levels() []string                { return []string{"primary"} }
func (s slowStore) Check(ctx context.Context) error { return wait(ctx, s.delay) }
func (s slowStore) Tables(ctx context.Context) ([]store.Table, error) {
	return nil, wait(ctx, s.delay)
}
func (s slowStore) ReplicaLag(ctx context.Context) ([]time.Duration, error) {
	return nil, wait(ctx, s.delay)
}

// slowLog answers each Partitions after delay.
type slowLog struct {
	intentlog.Log
	delay time.Duration
}

func (l slowLog) Partitions(ctx context.Context, topic string) (int32, error) {
	if err := wait(ctx, l.delay); err != nil {
		return 0, err
	}
	if topic == dlq.Topic("a") {
		return dlq.Partitions, nil
	}
	return 4, nil
}

// TestDoctorDeadlinePerCheck: --timeout bounds each check, as the flag
// says, not the store's checks or the topics of every table all together.
// On a loaded machine (load > 20) each answer of the store took a few
// seconds, and the default 10 s ran out over the checks after the first
// few: doctor failed a store that answered every check (hunt-f).
func TestDoctorDeadlinePerCheck(t *testing.T) {
	t.Parallel()
	const timeout = 400 * time.Millisecond
	delay := timeout * 6 / 10 // each check well within the bound, two of them not
	var out bytes.Buffer
	var failed []string
	fail := func(check, format string, args ...any) {
		fmt.Fprintf(&out, "%s FAIL: %s\n", check, fmt.Sprintf(format, args...))
		failed = append(failed, check)
	}
	doctorStoreChecks(context.Background(), slowStore{delay: delay}, timeout, &out, fail)
	tables := []catalog.Table{{Name: "a", State: catalog.Ready, Partitions: 4}}
	doctorLogChecks(context.Background(), slowLog{delay: delay}, nil, timeout, &out, tables, fail)
	if len(failed) > 0 {
		t.Errorf("checks %v failed, each answered within --timeout %s:\n%s", failed, timeout, out.String())
	}
	// A check that does not answer within the bound says so, and what to do.
	out.Reset()
	failed = nil
	doctorStoreChecks(context.Background(), slowStore{delay: time.Hour}, timeout, &out, fail)
	if !strings.Contains(out.String(), "raise --timeout") {
		t.Errorf("a check past --timeout: want it to say raise --timeout:\n%s", out.String())
	}
}
