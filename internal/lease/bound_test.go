package lease

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// clocks are the local clocks over the world's (the store's): the
// monotonic one lags it by monoLag (the host was suspended that long),
// the wall clock by wallLag (stepped back that far).
type clocks struct {
	w                *world
	mu               sync.Mutex
	monoLag, wallLag time.Duration
}

func (c *clocks) mono() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.clock().Add(-c.monoLag)
}

func (c *clocks) wall() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.clock().Add(-c.wallLag)
}

func (c *clocks) lag(mono, wall time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.monoLag, c.wallLag = mono, wall
}

func (w *world) set(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = t
}

// TestValidityEndsTheMarginBeforeTheStoreExpires: the store lets another
// process claim the name TTL after the store's time of the last
// successful claim or renewal; the lease is valid here until the margin
// (TTL/5) before the TTL runs out counted from the start of that call,
// which comes before the store's time, on each clock alone (the other one
// moved so that it does not bound it), and not a nanosecond longer.
func TestValidityEndsTheMarginBeforeTheStoreExpires(t *testing.T) {
	t.Parallel()
	const ttl, margin = 15 * time.Second, 3 * time.Second
	for _, by := range []string{"claim", "renewal"} {
		for _, bound := range []string{"monotonic", "wall"} {
			for _, delay := range []time.Duration{0, 2 * time.Second} {
				t.Run(fmt.Sprintf("%s, %s clock, store calls taking %s each way", by, bound, delay), func(t *testing.T) {
					t.Parallel()
					w := newWorld()
					c := &clocks{w: w}
					o := w.opts()
					o.Now, o.Wall = c.mono, c.wall
					w.delay = delay
					// probe checks validity around its end, for a call
					// the store took at its time at.
					probe := func(k *Keeper, at time.Time) {
						if bound == "monotonic" {
							c.lag(0, time.Hour) // the wall clock stepped back
						} else {
							c.lag(time.Second, 0) // the host suspended for 1s
						}
						end := at.Add(-delay).Add(ttl - margin) // by the store's clock
						if end.After(at.Add(ttl - margin)) {
							t.Fatalf("valid until %s, the store's expiry is at %s", end, at.Add(ttl))
						}
						w.set(end.Add(-time.Nanosecond))
						if err := k.Check(); err != nil {
							t.Errorf("a nanosecond before the margin: %v", err)
						}
						w.set(end)
						if err := k.Check(); err == nil {
							t.Errorf("valid %s before the store's expiry (margin %s)", at.Add(ttl).Sub(end), margin)
						}
						if _, err := k.Hold(); err == nil {
							t.Errorf("Hold at the margin before the store's expiry")
						}
					}
					k, err := Claim(context.Background(), w, "proxy/3", me, o)
					if err != nil {
						t.Fatal(err)
					}
					if by == "claim" {
						probe(k, w.claims[0])
						return
					}
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					probed := false
					err = k.Run(ctx, func() {
						if probed {
							return
						}
						probed = true
						defer cancel()
						if err := k.Renewing(); err != nil {
							t.Fatalf("renewal: %v", err)
						}
						probe(k, w.renewals[0])
					})
					if err != nil || !probed {
						t.Fatalf("run: %v, probed %v", err, probed)
					}
				})
			}
		}
	}
}

// TestRenewalDueByEitherClock: Run renews TTL/3 after the claim by the
// monotonic clock when the wall clock was stepped back, and by the wall
// clock when the host was suspended (the monotonic clock stopped).
func TestRenewalDueByEitherClock(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name             string
		monoLag, wallLag time.Duration // from 2s after the claim on
	}{
		{name: "wall clock stepped back an hour", wallLag: time.Hour},
		{name: "host suspended for a second", monoLag: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld()
			c := &clocks{w: w}
			o := w.opts()
			o.Now, o.Wall = c.mono, c.wall
			k, err := Claim(context.Background(), w, "proxy/3", me, o)
			if err != nil {
				t.Fatal(err)
			}
			claimed := w.claims[0]
			ctx, cancel := context.WithCancel(context.Background())
			w.tick = func(w *world) {
				el := w.clock().Sub(claimed)
				if el >= 2*time.Second {
					c.lag(tc.monoLag, tc.wallLag)
				}
				if err := k.Check(); err != nil {
					t.Errorf("%s after the claim: %v", el, err)
				}
				if el >= 20*time.Second {
					cancel()
				}
			}
			if err := k.Run(ctx, nil); err != nil {
				t.Fatal(err)
			}
			// Both are 5s by the store's clock: the monotonic clock's
			// 5s, or the wall clock's (4s on the monotonic clock).
			if len(w.renewals) == 0 || w.renewals[0].Sub(claimed) != 5*time.Second {
				t.Fatalf("renewals at %v after %v, want the first 5s after the claim", w.renewals, claimed)
			}
		})
	}
}

// TestHoldDoneBeforeRelease: a hold done before Release (nobody waits
// for it) keeps Release from nothing: it gives the lease up at once.
func TestHoldDoneBeforeRelease(t *testing.T) {
	t.Parallel()
	w := newWorld()
	o := w.opts()
	o.Sleep = func(ctx context.Context, d time.Duration) error {
		t.Errorf("Release waited %s with no hold in flight", d)
		return w.sleep(ctx, d)
	}
	k, err := Claim(context.Background(), w, "proxy/3", me, o)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		done, err := k.Hold()
		if err != nil {
			t.Fatal(err)
		}
		done()
	}
	k.Release()
	if len(w.released) != 1 {
		t.Fatalf("released %v", w.released)
	}
}
