package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/lease"
	"github.com/wail-cdc/wail/internal/store"
)

// leaseStore keeps one lease; renewals fail while down.
type leaseStore struct {
	mu   sync.Mutex
	down bool
}

func (l *leaseStore) ClaimLease(_ context.Context, name string, me store.Lease, ttl time.Duration) (store.Lease, error) {
	return me, nil
}

func (l *leaseStore) RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return store.Lease{}, errors.New("store down")
	}
	return store.Lease{Holder: holder}, nil
}

func (l *leaseStore) ReleaseLease(context.Context, string, string) error { return nil }

// TestLeaseLapseIsLogged: a lapse of the proxy id's lease is logged once
// when a failed renewal finds it, and once more when a renewal ends it,
// with how long writes were refused; a process paused past its lease
// (it renews at once when it wakes, no renewal fails) logs the second.
// Before, neither was logged: wail SIGSTOPped 20s, or two of three
// Cassandra nodes paused 12s, refused writes with "the lease was not
// renewed in time" and its log said nothing of it (hunt-v).
func TestLeaseLapseIsLogged(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		pause, down     time.Duration
		lapsed, renewed int
	}{
		{name: "store down 30s", down: 30 * time.Second, lapsed: 1, renewed: 1},
		{name: "paused 20s", pause: 20 * time.Second, renewed: 1},
		{name: "store down 5s", down: 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
			begin, paused := now, false
			st := &leaseStore{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			sleep := func(ctx context.Context, d time.Duration) error {
				mu.Lock()
				now = now.Add(d)
				el := now.Sub(begin)
				if el >= 20*time.Second && !paused {
					paused = true
					now = now.Add(tc.pause)
				}
				mu.Unlock()
				st.mu.Lock()
				st.down = el >= 20*time.Second && el < 20*time.Second+tc.down
				st.mu.Unlock()
				if el >= 90*time.Second {
					cancel()
				}
				return ctx.Err()
			}
			k, err := lease.Claim(ctx, st, "proxy/5", store.Lease{Holder: "me"}, lease.Options{TTL: 15 * time.Second, What: "proxy id 5", Now: clock, Sleep: sleep})
			if err != nil {
				t.Fatal(err)
			}
			var logs lockedBuffer
			cfg := config.Default()
			cfg.ProxyID = 5
			s := &Server{cfg: cfg, logger: slog.New(slog.NewTextHandler(&logs, nil)), health: health.NewRegistry(prometheus.NewRegistry()), lease: k}
			if err := k.Run(ctx, s.leaseHealth); err != nil {
				t.Fatal(err)
			}
			out := logs.String()
			lapsed := strings.Count(out, "the proxy id's lease lapsed")
			renewed := strings.Count(out, "the proxy id's lease is renewed after it lapsed")
			if lapsed != tc.lapsed || renewed != tc.renewed || renewed > 0 && !strings.Contains(out, "lapsed_for=") {
				t.Fatalf("logged the lapse %d times and the renewal %d, want %d and %d:\n%s", lapsed, renewed, tc.lapsed, tc.renewed, out)
			}
		})
	}
}
