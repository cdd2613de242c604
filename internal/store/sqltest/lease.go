package sqltest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/lease"
	"github.com/wail-cdc/wail/internal/store"
)

func holder(id string) store.Lease {
	return store.Lease{Holder: "host-" + id + "/42/" + id, Host: "host-" + id, PID: 42}
}

// RunLeases checks the lease contract with two handles on one database, a
// and b, standing for two processes.
func RunLeases(t *testing.T, a, b lease.Store) {
	ctx := context.Background()
	ha, hb := holder("a"), holder("b")
	t.Run("held", func(t *testing.T) {
		got, err := a.ClaimLease(ctx, "held", ha, time.Minute)
		if err != nil || got.Holder != ha.Holder || got.Host != ha.Host || got.PID != 42 || !got.Expires.After(got.Since) {
			t.Fatalf("claim: %+v %v", got, err)
		}
		held, err := b.ClaimLease(ctx, "held", hb, time.Minute)
		if !errors.Is(err, store.ErrLeaseHeld) || held.Holder != ha.Holder || held.Host != "host-a" || !held.Since.Equal(got.Since) {
			t.Fatalf("a second claim: %+v %v; want held by a", held, err)
		}
		again, err := a.ClaimLease(ctx, "held", ha, time.Minute)
		if err != nil || !again.Since.Equal(got.Since) {
			t.Fatalf("claiming again: %+v %v; want the same lease, since kept", again, err)
		}
		time.Sleep(10 * time.Millisecond)
		renewed, err := a.RenewLease(ctx, "held", ha.Holder, time.Minute)
		if err != nil || !renewed.Renewed.After(got.Renewed) || !renewed.Expires.After(got.Expires) {
			t.Fatalf("renew: %+v %v after %+v", renewed, err, got)
		}
		if cur, err := b.RenewLease(ctx, "held", hb.Holder, time.Minute); !errors.Is(err, store.ErrLeaseLost) || cur.Holder != ha.Holder {
			t.Fatalf("renewing another's lease: %+v %v", cur, err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		if _, err := a.ClaimLease(ctx, "expired", ha, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(400 * time.Millisecond)
		got, err := b.ClaimLease(ctx, "expired", hb, time.Minute)
		if err != nil || got.Holder != hb.Holder {
			t.Fatalf("claiming an expired lease: %+v %v", got, err)
		}
		if cur, err := a.RenewLease(ctx, "expired", ha.Holder, time.Minute); !errors.Is(err, store.ErrLeaseLost) || cur.Holder != hb.Holder {
			t.Fatalf("the old holder renews: %+v %v; want lost to b", cur, err)
		}
	})
	t.Run("released", func(t *testing.T) {
		if _, err := a.ClaimLease(ctx, "released", ha, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := b.ReleaseLease(ctx, "released", hb.Holder); err != nil { // not b's: no effect
			t.Fatal(err)
		}
		if _, err := b.ClaimLease(ctx, "released", hb, time.Minute); !errors.Is(err, store.ErrLeaseHeld) {
			t.Fatalf("released by a non-holder: %v", err)
		}
		if err := a.ReleaseLease(ctx, "released", ha.Holder); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ClaimLease(ctx, "released", hb, time.Minute); err != nil {
			t.Fatalf("claim after release: %v", err)
		}
		if _, err := a.RenewLease(ctx, "released", ha.Holder, time.Minute); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("renew after release: %v", err)
		}
	})
	// Claims race for a free name, and for one whose holder's lease
	// expired (a takeover, the other statement): one wins.
	for _, name := range []string{"race", "race-expired"} {
		t.Run(name, func(t *testing.T) {
			if name == "race-expired" {
				if _, err := a.ClaimLease(ctx, name, holder("dead"), 200*time.Millisecond); err != nil {
					t.Fatal(err)
				}
				time.Sleep(400 * time.Millisecond)
			}
			raceClaims(t, a, b, name)
		})
	}
}

// raceClaims runs 8 claims of name at once, half through a, half
// through b: exactly one must win.
func raceClaims(t *testing.T, a, b lease.Store, name string) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, held := 0, 0
	for i := range 8 {
		wg.Go(func() {
			st := a
			if i%2 == 1 {
				st = b
			}
			_, err := st.ClaimLease(ctx, name, holder(fmt.Sprint(i)), time.Minute)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, store.ErrLeaseHeld):
				held++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if won != 1 || held != 7 {
		t.Fatalf("%d claims won, %d found it held; want 1 and 7", won, held)
	}
}
