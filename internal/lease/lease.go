// Package lease keeps a process's claim on a name in a store that several
// processes share: a proxy's claim on its proxy id, since versions are
// unique only per proxy id.
//
//   - Claim takes the name at start. If another holder has it, Claim
//     watches the holder's lease: a holder that renews it is alive, and
//     Claim fails with a *HeldError naming it (host, pid, since); a holder
//     that does not (it crashed) loses it when it expires, after at most
//     its TTL, and Claim takes it.
//   - Run renews the lease every TTL/3, counted from the claim on the
//     monotonic clock and on the wall clock both (at once if Run starts
//     later than that, or a clock shows the host was suspended or was
//     stepped forward: Run looks at both at least every TTL/15), and
//     while renewals fail every TTL/12, until its context ends, then
//     releases it (Release), so a restart does not wait. If the name was
//     taken by another process (after this one's lease lapsed), Run
//     returns a *LostError: the process must stop writing.
//   - Check says whether the lease is still valid: it is for TTL from the
//     start of the last successful renewal, minus a fifth of the TTL (the
//     margin), on the monotonic clock and on the wall clock both (the
//     monotonic one stops while the host is suspended; a wall clock
//     stepped forward ends validity until the next renewal), and never
//     after Release or a loss. The store decides expiry
//     by its own clock, and another process can claim the name only after
//     that, so the last use this process checks comes at least the margin
//     before the next holder's first, as long as the clocks run at the
//     same rate; a proxy's versions carry wall time, so the margin is also
//     how far the next holder's clock may be behind this one's. The
//     margin bounds when a proxy stamps, not how long its writes take
//     after: a write stamped under the lease and appended or stored after
//     it lapsed has a version below the next holder's, like any other
//     proxy's slow write.
//   - Hold is Check for a use that must be over before the next holder can
//     take the name at once (a proxy's versions, from their stamp until
//     their intents are in the log, where the next holder's clock observes
//     them): Release gives the lease up only once the holds end, else it
//     leaves it to expire.
package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// Store keeps leases (the SQL stores).
type Store interface {
	ClaimLease(ctx context.Context, name string, l store.Lease, ttl time.Duration) (store.Lease, error)
	RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Options tune a Keeper.
type Options struct {
	// TTL is how long a lease lasts without renewal.
	TTL time.Duration
	// What names the claimed thing in messages ("proxy id 3").
	What string
	// Waiting, if set, is called while Claim waits for another holder's
	// lease to expire.
	Waiting func(held store.Lease)
	// Now is the local clock (nil: time.Now; validity is measured on its
	// monotonic reading); Wall is the wall clock alone (nil: Now without
	// its monotonic reading). Sleep waits (nil: a timer).
	Now   func() time.Time
	Wall  func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

func (o *Options) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Wall == nil {
		now := o.Now
		o.Wall = func() time.Time { return now().Round(0) }
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.What == "" {
		o.What = "the lease"
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// HeldError says that a live holder has the name.
type HeldError struct {
	What  string
	Lease store.Lease
}

func (e *HeldError) Error() string {
	l := e.Lease
	return fmt.Sprintf("%s is held by another live process: host %s, pid %d, since %s (it renews its lease); "+
		"give every proxy sharing a store its own id, or stop that process",
		e.What, l.Host, l.PID, l.Since.UTC().Format(time.RFC3339))
}

func (e *HeldError) Unwrap() error { return store.ErrLeaseHeld }

// LostError says that another process took the name after this process's
// lease lapsed.
type LostError struct {
	What  string
	Lease store.Lease // the new holder's, if known
}

func (e *LostError) Error() string {
	l := e.Lease
	const stop = "this process writes nothing more and stops; if both processes should run, give each proxy sharing a store its own id"
	if l.Holder == "" {
		return fmt.Sprintf("%s: this process's lease lapsed and is gone: %s", e.What, stop)
	}
	return fmt.Sprintf("%s: this process's lease lapsed and host %s, pid %d took it at %s: %s",
		e.What, l.Host, l.PID, l.Since.UTC().Format(time.RFC3339), stop)
}

func (e *LostError) Unwrap() error { return store.ErrLeaseLost }

// Keeper holds one claimed lease.
type Keeper struct {
	st   Store
	name string
	me   store.Lease
	opts Options

	mu         sync.Mutex
	validUntil time.Time     // by the local clock (its monotonic reading)
	wallUntil  time.Time     // by the wall clock
	renewErr   error         // the last renewal's error, nil once one succeeds
	tried      time.Time     // when the last renewal began (local clock)
	ended      string        // why the lease is over here for good ("": it is not)
	lost       bool          // another process took it
	holds      int           // Holds not yet done
	drained    chan struct{} // closed when holds drops to 0 (nil: nobody waits)
	lapse      time.Duration // how long the lease was invalid before the last renewal, until Lapse tells it
}

// Claim takes name for me (Holder, Host, PID set), waiting while another
// holder's lease is not renewed (see the package comment). Store errors
// (e.g. unreachable) are returned as they are.
func Claim(ctx context.Context, st Store, name string, me store.Lease, opts Options) (*Keeper, error) {
	opts.defaults()
	k := &Keeper{st: st, name: name, me: me, opts: opts}
	poll := min(max(opts.TTL/10, 100*time.Millisecond), time.Second)
	var first *store.Lease
	for {
		start, wall := opts.Now(), opts.Wall()
		got, err := st.ClaimLease(ctx, name, me, opts.TTL)
		if err == nil {
			k.me = got
			k.validUntil, k.wallUntil = start.Add(opts.TTL), wall.Add(opts.TTL)
			return k, nil
		}
		if !errors.Is(err, store.ErrLeaseHeld) {
			return nil, err
		}
		switch {
		case first == nil:
			first = &got
		case got.Holder != first.Holder || !got.Renewed.Equal(first.Renewed):
			return nil, &HeldError{What: opts.What, Lease: got}
		}
		if opts.Waiting != nil {
			opts.Waiting(got)
		}
		if err := opts.Sleep(ctx, poll); err != nil {
			return nil, err
		}
	}
}

// Lease returns the lease as claimed.
func (k *Keeper) Lease() store.Lease { return k.me }

// margin is how long before the end of its TTL a lease stops being valid
// here.
func (k *Keeper) margin() time.Duration { return k.opts.TTL / 5 }

// Check returns nil while the lease is valid, else an error that says why
// not.
func (k *Keeper) Check() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.check()
}

func (k *Keeper) check() error {
	switch {
	case k.ended != "":
		return fmt.Errorf("%s: %s", k.opts.What, k.ended)
	case k.opts.Now().Before(k.validUntil.Add(-k.margin())) && k.opts.Wall().Before(k.wallUntil.Add(-k.margin())):
		// Both clocks: the monotonic one stops while the host is
		// suspended, and the versions carry the wall clock.
		return nil
	case k.renewErr == nil:
		return fmt.Errorf("%s: the lease was not renewed in time; writes resume once it is", k.opts.What)
	}
	return fmt.Errorf("%s: the lease was not renewed in time (last error: %v); writes resume once it is", k.opts.What, k.renewErr)
}

// Hold is Check for a use of what the lease covers that must be over
// before another process may take the name at once: a proxy's versions,
// from right after they were stamped until their intents are appended.
// While it returns nil, Release waits for done (see Release).
func (k *Keeper) Hold() (done func(), err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.check(); err != nil {
		return nil, err
	}
	k.holds++
	var once sync.Once
	return func() {
		once.Do(func() {
			k.mu.Lock()
			defer k.mu.Unlock()
			k.holds--
			if k.holds == 0 && k.drained != nil {
				close(k.drained)
				k.drained = nil
			}
		})
	}, nil
}

// Renewing returns the error of the last renewal, nil if it succeeded.
func (k *Keeper) Renewing() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.renewErr
}

// Run renews the lease until ctx ends, then releases it. It returns a
// *LostError if the lease is gone to another process, nil otherwise.
// changed, if set, is called after each renewal attempt. An attempt the
// store does not answer within four fifths of the TTL (when its answer
// could no longer make the lease valid) is given up as failed.
//
// It sleeps at most poll at a time and looks at both clocks when it
// wakes: a host suspended (the monotonic clock, and with it a timer,
// stopped) or a wall clock stepped forward ends the lease's validity
// here (Check), and a renewal is due at once then, not when the
// monotonic clock reaches it (writes were refused for up to a third of
// the TTL while /healthz, which only renewals update, said nothing).
func (k *Keeper) Run(ctx context.Context, changed func()) error {
	defer k.Release()
	for {
		if d := k.nextRenewal(); d > 0 {
			if k.opts.Sleep(ctx, min(d, k.poll())) != nil {
				return nil
			}
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		start, wall := k.opts.Now(), k.opts.Wall()
		k.mu.Lock()
		k.tried = start
		k.mu.Unlock()
		// An answer after TTL less the margin makes the lease valid no
		// more (validity counts from the start): give the call up then,
		// report it and try again, whatever the store's own timeout.
		rctx, cancel := context.WithTimeout(ctx, k.opts.TTL-k.margin())
		got, err := k.st.RenewLease(rctx, k.name, k.me.Holder, k.opts.TTL)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		lost := errors.Is(err, store.ErrLeaseLost)
		k.mu.Lock()
		k.renewErr = err
		switch {
		case err == nil:
			k.noteLapse(start, wall)
			k.validUntil, k.wallUntil = start.Add(k.opts.TTL), wall.Add(k.opts.TTL)
		case lost:
			k.lost = true // never valid again
			k.ended = "this process's lease lapsed and another process took it: this process stops and writes nothing more"
		}
		k.mu.Unlock()
		if changed != nil {
			changed()
		}
		if lost {
			return &LostError{What: k.opts.What, Lease: got}
		}
	}
}

// noteLapse, at a renewal that began at start (wall on the wall clock)
// and succeeded, keeps for Lapse how long the lease had been invalid, if
// it was when the renewal began: from the end of its validity until now,
// on whichever clock ended it first. k.mu is held.
func (k *Keeper) noteLapse(start, wall time.Time) {
	if k.ended != "" || start.Before(k.validUntil.Add(-k.margin())) && wall.Before(k.wallUntil.Add(-k.margin())) {
		return
	}
	k.lapse = max(k.opts.Now().Sub(k.validUntil.Add(-k.margin())), k.opts.Wall().Sub(k.wallUntil.Add(-k.margin())), 0)
}

// Lapse returns how long the lease was invalid (writes refused) before the
// last successful renewal, once: 0 if it was valid then, or if Lapse
// already told it. A process paused past its lease renews at once when
// it wakes, without a renewal ever failing; this is how it learns that it
// refused writes meanwhile.
func (k *Keeper) Lapse() time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	d := k.lapse
	k.lapse = 0
	return d
}

// nextRenewal is how long Run waits before it renews: until TTL/3 after
// the start of the last successful renewal (or the claim) on either
// clock, at once if that passed (Run started late: the start went on
// after the claim; the host was suspended; the wall clock was stepped
// forward), and a quarter of that after the start of a try while
// renewals fail.
func (k *Keeper) nextRenewal() time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	every := k.opts.TTL / 3
	if k.renewErr != nil {
		return max(k.tried.Add(max(every/4, 50*time.Millisecond)).Sub(k.opts.Now()), 0)
	}
	mono := k.validUntil.Add(every - k.opts.TTL).Sub(k.opts.Now())
	wall := k.wallUntil.Add(every - k.opts.TTL).Sub(k.opts.Wall())
	return max(min(mono, wall), 0)
}

// poll is the longest Run sleeps at once (Run).
func (k *Keeper) poll() time.Duration { return max(k.opts.TTL/15, 10*time.Millisecond) }

// Release ends the lease here (Check and Hold refuse from now on) and
// gives it up in the store, so that a restart does not wait, once the
// Holds taken before are done: the next holder then claims at once and
// finds what they covered (a proxy's last intents in the log). Holds not
// done within a fifth of the TTL leave the lease to expire instead: the
// next holder waits for that, and the margin separates its versions from
// this process's last. Best effort (else it expires). Run does it when it
// ends.
func (k *Keeper) Release() {
	k.mu.Lock()
	if k.lost {
		k.mu.Unlock()
		return // another process's now
	}
	if k.ended == "" {
		k.ended = "the lease was given up: this process is stopping and writes nothing more"
	}
	var drained chan struct{}
	if k.holds > 0 {
		if k.drained == nil {
			k.drained = make(chan struct{})
		}
		drained = k.drained
	}
	k.mu.Unlock()
	if drained != nil {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-drained:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := k.opts.Sleep(ctx, k.margin())
		cancel()
		if err == nil { // not drained in time: leave the lease to expire
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = k.st.ReleaseLease(ctx, k.name, k.me.Holder)
}
