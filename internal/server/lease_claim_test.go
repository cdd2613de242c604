package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/store"
)

// ackLostLeases is a store that keeps leases (expiry by a clock that does
// not move) and whose first claim commits but does not answer: the
// connection broke after the COMMIT.
type ackLostLeases struct {
	store.Store
	mu       sync.Mutex
	holder   string
	answered bool
}

func (a *ackLostLeases) ClaimLease(_ context.Context, name string, l store.Lease, _ time.Duration) (store.Lease, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.holder != "" && a.holder != l.Holder {
		return store.Lease{Name: name, Holder: a.holder, Host: l.Host, PID: l.PID}, store.ErrLeaseHeld
	}
	a.holder = l.Holder
	if !a.answered {
		a.answered = true
		return store.Lease{}, errors.Join(store.ErrUnavailable, errors.New("connection reset after the commit"))
	}
	l.Name = name
	return l, nil
}

func (a *ackLostLeases) RenewLease(_ context.Context, name, holder string, _ time.Duration) (store.Lease, error) {
	return store.Lease{Name: name, Holder: holder}, nil
}

func (a *ackLostLeases) ReleaseLease(context.Context, string, string) error { return nil }

// TestClaimAgainAfterAnUnansweredClaim: a claim of the proxy id that the
// store committed without answering (a connection lost after the COMMIT:
// a waitable error, so the start tries again) is this process's: the next
// attempt claims as the same holder and takes it at once. (Each attempt
// was a new holder: it found the id held by its own last attempt, said
// so naming this host and pid, and waited the whole proxy.lease_ttl for
// that claim to expire.)
func TestClaimAgainAfterAnUnansweredClaim(t *testing.T) {
	t.Parallel()
	s := pebbleServer(t, nil)
	s.store = &ackLostLeases{Store: s.store}
	ctx := t.Context()
	if err := s.claimProxyID(ctx); !waitable(err) {
		t.Fatalf("the unanswered claim: %v, want a waitable error", err)
	}
	actx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	begin := time.Now()
	if err := s.claimProxyID(actx); err != nil {
		t.Fatalf("the next attempt, after %s: %v", time.Since(begin).Round(time.Millisecond), err)
	}
	if s.lease == nil || s.lease.Check() != nil {
		t.Fatal("no valid lease after the claim")
	}
}

// crashedHolder is a store where a process that crashed holds every
// lease until expires (by the store's clock, which does not move here).
type crashedHolder struct {
	store.Store
	expires time.Time
}

func (c *crashedHolder) ClaimLease(_ context.Context, name string, _ store.Lease, _ time.Duration) (store.Lease, error) {
	since := c.expires.Add(-20 * time.Minute)
	return store.Lease{Name: name, Holder: "crashed", Host: "there", PID: 77, Since: since, Renewed: since.Add(10 * time.Minute),
		Expires: c.expires}, store.ErrLeaseHeld
}

func (c *crashedHolder) RenewLease(context.Context, string, string, time.Duration) (store.Lease, error) {
	return store.Lease{}, store.ErrLeaseLost
}

func (c *crashedHolder) ReleaseLease(context.Context, string, string) error { return nil }

// TestClaimWaitSaysWhenTheHolderExpires: the holder of the proxy id
// leased it with its own proxy.lease_ttl (10m, since lowered to this
// process's 15s): the start says when that lease expires, the time the id
// is free if the holder crashed. (It said the wait lasted at most
// proxy.lease_ttl, this process's: 15s, while it lasted up to 10m.)
func TestClaimWaitSaysWhenTheHolderExpires(t *testing.T) {
	t.Parallel()
	s := pebbleServer(t, nil)
	expires := time.Date(2026, 5, 1, 10, 20, 0, 0, time.UTC)
	s.store = &crashedHolder{Store: s.store, expires: expires}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := s.claimProxyID(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("claim: %v, want the context's end while it waits", err)
	}
	why := s.starting.Load()
	if why == nil {
		t.Fatal("the start does not say what it waits for")
	}
	for _, want := range []string{"proxy id 0 is held by host there, pid 77", "once its lease expires, at 2026-05-01T10:20:00Z by the store's clock"} {
		if !strings.Contains(*why, want) {
			t.Errorf("start condition %q lacks %q", *why, want)
		}
	}
	if strings.Contains(*why, "at most proxy.lease_ttl") {
		t.Errorf("start condition %q bounds the wait by this process's proxy.lease_ttl", *why)
	}
}

// TestHoldStampedChecksTheCatalog: with a lease (every store that
// processes share), the check right after a write is stamped refuses it
// when the catalog is stale, as the check before does: a write that
// waited between the two (a queue, admission control) past another
// process's drop of its table must not land after the drop. It held the
// lease only, and let the write through.
func TestHoldStampedChecksTheCatalog(t *testing.T) {
	t.Parallel()
	// Stale 1.2 s after the last read: no refresh runs here (no Run).
	s := pebbleServer(t, func(c *config.Config) { c.CatalogRefresh = 100 * time.Millisecond })
	s.store = &ackLostLeases{Store: s.store, answered: true}
	if err := s.claimProxyID(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.cfg.Store.Kind = config.StorePostgres // a catalog that other processes change
	for deadline := time.Now().Add(5 * time.Second); s.catalog.Fresh() == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the catalog never went stale")
		}
	}
	if err := s.admitWrites(); err == nil {
		t.Fatal("admitWrites let a write through on a stale catalog")
	}
	done, err := s.holdStamped()
	if err == nil {
		done()
		t.Fatal("holdStamped let a stamped write through on a stale catalog; want the catalog's error, as admitWrites")
	}
	if !strings.Contains(err.Error(), "writes are refused until it is read again") {
		t.Fatalf("holdStamped: %v; want the stale catalog's error", err)
	}
}

// pebbleServer is a server made by New (not run) on the default config
// with a data dir of the test's, tune applied first; closed at cleanup.
func pebbleServer(t *testing.T, tune func(*config.Config)) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	if tune != nil {
		tune(&cfg)
	}
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s
}
