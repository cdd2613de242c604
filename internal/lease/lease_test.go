package lease

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// world is a store of leases and a virtual clock that Sleep advances; the
// store's clock is the same clock.
type world struct {
	mu     sync.Mutex
	now    time.Time
	leases map[string]store.Lease
	down   bool // the store does not answer
	// stall makes a renewal hang until its context ends (a store that
	// takes the call and never answers).
	stall bool
	// tick runs at every Sleep (another process acting meanwhile).
	tick     func(w *world)
	released []string
	// releaseCalls counts the ReleaseLease calls, whatever they did.
	releaseCalls int
	// bounds are the real time each RenewLease call had left before its
	// context's deadline when it came (-1: none).
	bounds []time.Duration
	// onRenew, if set, runs at the start of every RenewLease call.
	onRenew func()
	// claims and renewals are the store's times of the calls it got.
	claims, renewals []time.Time
	// idle counts the Sleeps in a row that waited no time.
	idle int
	// delay is how long a claim or a renewal takes to reach the store,
	// and its answer to come back (a slow network).
	delay time.Duration
}

func newWorld() *world {
	return &world{now: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), leases: map[string]store.Lease{}}
}

var errDown = errors.New("store down")

func (w *world) ClaimLease(ctx context.Context, name string, l store.Lease, ttl time.Duration) (store.Lease, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = w.now.Add(w.delay)
	defer func() { w.now = w.now.Add(w.delay) }()
	w.claims = append(w.claims, w.now)
	if err := ctx.Err(); err != nil {
		return store.Lease{}, err
	}
	if w.down {
		return store.Lease{}, errDown
	}
	cur, ok := w.leases[name]
	if ok && cur.Holder != l.Holder && !cur.Expires.Before(w.now) {
		return cur, store.ErrLeaseHeld
	}
	l.Name, l.Since, l.Renewed, l.Expires = name, w.now, w.now, w.now.Add(ttl)
	if ok && cur.Holder == l.Holder {
		l.Since = cur.Since
	}
	w.leases[name] = l
	return l, nil
}

func (w *world) RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	if w.onRenew != nil {
		w.onRenew()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = w.now.Add(w.delay)
	defer func() { w.now = w.now.Add(w.delay) }()
	w.renewals = append(w.renewals, w.now)
	bound := time.Duration(-1)
	if d, ok := ctx.Deadline(); ok {
		bound = time.Until(d)
	}
	w.bounds = append(w.bounds, bound)
	if w.stall {
		w.mu.Unlock()
		<-ctx.Done()
		w.mu.Lock()
	}
	if err := ctx.Err(); err != nil {
		return store.Lease{}, err
	}
	if w.down {
		return store.Lease{}, errDown
	}
	cur, ok := w.leases[name]
	if !ok || cur.Holder != holder {
		return cur, store.ErrLeaseLost
	}
	cur.Renewed, cur.Expires = w.now, w.now.Add(ttl)
	w.leases[name] = cur
	return cur, nil
}

func (w *world) ReleaseLease(ctx context.Context, name, holder string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.releaseCalls++
	if err := ctx.Err(); err != nil {
		return err // a store call whose context ended does nothing
	}
	if cur, ok := w.leases[name]; ok && cur.Holder == holder {
		delete(w.leases, name)
		w.released = append(w.released, holder)
	}
	return nil
}

func (w *world) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *world) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	w.now = w.now.Add(d)
	tick := w.tick
	if d > 0 {
		w.idle = 0
	} else if w.idle++; w.idle > 100 {
		w.mu.Unlock()
		panic("a hundred waits in a row for no time: a busy loop on the store")
	}
	w.mu.Unlock()
	if tick != nil {
		tick(w)
	}
	return ctx.Err()
}

func (w *world) opts() Options {
	return Options{TTL: 15 * time.Second, What: "proxy id 3", Now: w.clock, Sleep: w.sleep}
}

var (
	me    = store.Lease{Holder: "me", Host: "here", PID: 1}
	other = store.Lease{Holder: "other", Host: "there", PID: 4242}
)

func TestClaimFree(t *testing.T) {
	t.Parallel()
	w := newWorld()
	k, err := Claim(context.Background(), w, "proxy/3", me, w.opts())
	if err != nil || k.Check() != nil || k.Lease().Holder != "me" {
		t.Fatalf("claim: %v, check %v", err, k.Check())
	}
	// The lease as the store granted it.
	if l := k.Lease(); l.Name != "proxy/3" || !l.Expires.Equal(w.clock().Add(15*time.Second)) {
		t.Fatalf("claimed lease %+v", l)
	}
	w.sleep(context.Background(), 11*time.Second) // under 80% of 15s
	if err := k.Check(); err != nil {
		t.Fatalf("valid at 11s: %v", err)
	}
	w.sleep(context.Background(), 2*time.Second) // 13s: past 80%
	if err := k.Check(); err == nil || err.Error() != "proxy id 3: the lease was not renewed in time; writes resume once it is" {
		t.Fatalf("at 13s without renewal (none failed): %v", err)
	}
}

// TestClaimRefusedByALiveHolder: a holder that renews is alive: Claim
// fails naming it, within one renewal period.
func TestClaimRefusedByALiveHolder(t *testing.T) {
	t.Parallel()
	w := newWorld()
	if _, err := w.ClaimLease(context.Background(), "proxy/3", other, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	begin := w.clock()
	w.tick = func(w *world) { // the other process renews every 5s
		if w.clock().Sub(begin) >= 5*time.Second {
			w.RenewLease(context.Background(), "proxy/3", "other", 15*time.Second)
		}
	}
	_, err := Claim(context.Background(), w, "proxy/3", me, w.opts())
	var held *HeldError
	if !errors.As(err, &held) || !errors.Is(err, store.ErrLeaseHeld) || held.Lease.Host != "there" || held.Lease.PID != 4242 {
		t.Fatalf("claim: %v", err)
	}
	for _, want := range []string{"proxy id 3", "host there", "pid 4242", "since 2026-05-01T00:00:00Z"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if waited := w.clock().Sub(begin); waited > 7*time.Second {
		t.Fatalf("refused after %s", waited)
	}
}

// TestClaimAfterACrashedHolder: a holder that stopped renewing loses the
// name when its lease expires, and Claim takes it then.
func TestClaimAfterACrashedHolder(t *testing.T) {
	t.Parallel()
	w := newWorld()
	if _, err := w.ClaimLease(context.Background(), "proxy/3", other, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	begin := w.clock()
	waits := 0
	o := w.opts()
	o.Waiting = func(held store.Lease) {
		if held.Holder != "other" {
			t.Errorf("waiting on %+v", held)
		}
		waits++
	}
	k, err := Claim(context.Background(), w, "proxy/3", me, o)
	if err != nil || k.Check() != nil {
		t.Fatalf("claim after the holder crashed: %v", err)
	}
	if took := w.clock().Sub(begin); took < 15*time.Second || took > 17*time.Second || waits == 0 {
		t.Fatalf("took %s, %d waits; want the holder's TTL", took, waits)
	}
}

func TestClaimStoreDown(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.down = true
	if _, err := Claim(context.Background(), w, "proxy/3", me, w.opts()); !errors.Is(err, errDown) {
		t.Fatalf("claim on a store that is down: %v", err)
	}
}

// TestRun: renewals keep the lease valid; while the store is down it
// stays valid until the margin, then writes must stop; they resume when a
// renewal succeeds; the lease is released at the end.
func TestRun(t *testing.T) {
	t.Parallel()
	w := newWorld()
	k, err := Claim(context.Background(), w, "proxy/3", me, w.opts())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	begin := w.clock()
	var sawValidWhileDown, sawInvalid, sawRecovered bool
	w.tick = func(w *world) {
		el := w.clock().Sub(begin)
		w.mu.Lock()
		w.down = el >= 20*time.Second && el < 60*time.Second
		w.mu.Unlock()
		switch {
		case el >= 20*time.Second && el < 25*time.Second && k.Check() == nil:
			sawValidWhileDown = true
		case el >= 40*time.Second && el < 60*time.Second && k.Check() != nil:
			// The operator learns why: the renewals' error.
			if err := k.Check(); !strings.Contains(err.Error(), "(last error: store down)") {
				t.Errorf("check while the renewals fail: %v", err)
			}
			sawInvalid = true
		case el >= 70*time.Second:
			sawRecovered = k.Check() == nil && k.Renewing() == nil
			cancel()
		}
	}
	if err := k.Run(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if !sawValidWhileDown || !sawInvalid || !sawRecovered {
		t.Fatalf("valid while down %v, invalid later %v, recovered %v", sawValidWhileDown, sawInvalid, sawRecovered)
	}
	if len(w.released) != 1 || w.released[0] != "me" {
		t.Fatalf("released %v", w.released)
	}
	// Each renewal is given up after four fifths of the TTL (12s; real
	// time: the call gets here well within the 4.5s to spare).
	for i, b := range w.bounds {
		if b > 12*time.Second || b <= 7500*time.Millisecond {
			t.Fatalf("renewal %d bounded by %s, want 12s", i, b)
		}
	}
}

// TestRunAfterASlowStart: Run starts some time after Claim (the start
// goes on after the claim: the clock observes the log, the tokens are
// read), and renews when a renewal is due by the claim, at once if that
// time passed. (It waited a whole renewal period first: after a start of
// 9s of a 15s lease, the lease was invalid from 12s to 14s, every write
// refused while the process had just reported itself ready.)
func TestRunAfterASlowStart(t *testing.T) {
	t.Parallel()
	for _, start := range []time.Duration{0, 4 * time.Second, 9 * time.Second, 11 * time.Second} {
		w := newWorld()
		k, err := Claim(context.Background(), w, "proxy/3", me, w.opts())
		if err != nil {
			t.Fatal(err)
		}
		claimed := w.clock()
		w.sleep(context.Background(), start)
		ctx, cancel := context.WithCancel(context.Background())
		w.tick = func(w *world) {
			if err := k.Check(); err != nil {
				t.Errorf("after a start of %s, %s after the claim: %v", start, w.clock().Sub(claimed), err)
				cancel()
			}
			if w.clock().Sub(claimed) >= time.Minute {
				cancel()
			}
		}
		if err := k.Run(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRunLost: another process took the name after this one's lease
// lapsed: Run returns a LostError naming it.
func TestRunLost(t *testing.T) {
	t.Parallel()
	w := newWorld()
	k, err := Claim(context.Background(), w, "proxy/3", me, w.opts())
	if err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	w.leases["proxy/3"] = store.Lease{Name: "proxy/3", Holder: "other", Host: "there", PID: 4242, Since: w.now, Expires: w.now.Add(time.Minute)}
	w.mu.Unlock()
	err = k.Run(context.Background(), nil)
	var lost *LostError
	if !errors.As(err, &lost) || !errors.Is(err, store.ErrLeaseLost) || !strings.Contains(err.Error(), "host there, pid 4242") ||
		!strings.Contains(err.Error(), "writes nothing more and stops; if both processes should run, give each proxy sharing a store its own id") {
		t.Fatalf("run: %v", err)
	}
	if len(w.released) != 0 || w.releaseCalls != 0 {
		t.Fatalf("released another's lease: %v (%d store calls)", w.released, w.releaseCalls)
	}
	// Writes stop at once, though the lease's time (from the claim) is
	// not over: another process holds the id now.
	const why = "proxy id 3: this process's lease lapsed and another process took it"
	if err := k.Check(); err == nil || !strings.HasPrefix(err.Error(), why) {
		t.Fatalf("check after the loss: %v", err)
	}
	if _, err := k.Hold(); err == nil || !strings.HasPrefix(err.Error(), why) {
		t.Fatalf("hold after the loss: %v", err)
	}
}

// TestRunEndsDuringARenewal: a renewal cut off because Run's context
// ended (the process stops) is no failure: nobody is told the renewals
// fail (a stopping proxy's /healthz said its lease could not be renewed).
func TestRunEndsDuringARenewal(t *testing.T) {
	t.Parallel()
	w := newWorld()
	k, err := Claim(context.Background(), w, "proxy/3", me, w.opts())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.onRenew = cancel
	changed := 0
	if err := k.Run(ctx, func() { changed++ }); err != nil {
		t.Fatal(err)
	}
	if changed != 0 || k.Renewing() != nil {
		t.Fatalf("the cut-off renewal was reported: %d calls, renewing %v", changed, k.Renewing())
	}
	if len(w.released) != 1 {
		t.Fatalf("released %v", w.released)
	}
}

// TestHoldDoneTwice: a hold's done called again ends nothing more: the
// other holds still keep Release waiting.
func TestHoldDoneTwice(t *testing.T) {
	t.Parallel()
	w := newWorld()
	o := w.opts()
	waited := false
	o.Sleep = func(ctx context.Context, d time.Duration) error {
		waited = true
		return w.sleep(ctx, d) // the other hold does not end in time
	}
	k, err := Claim(context.Background(), w, "proxy/3", me, o)
	if err != nil {
		t.Fatal(err)
	}
	done1, err := k.Hold()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Hold(); err != nil {
		t.Fatal(err)
	}
	done1()
	done1()
	k.Release()
	if !waited || len(w.released) != 0 {
		t.Fatalf("Release with a hold in flight: waited %v, released %v", waited, w.released)
	}
}

// TestReleaseEndsValidity: once Release ran (at shutdown, or when the
// start failed), Check refuses: a write still queued then must not be
// stamped with an id the next holder may already have claimed (Release
// deleted the row: it claims at once). (Check kept answering nil until
// the TTL ran out.)
func TestReleaseEndsValidity(t *testing.T) {
	t.Parallel()
	w := newWorld()
	k, err := Claim(context.Background(), w, "proxy/3", me, w.opts())
	if err != nil {
		t.Fatal(err)
	}
	k.Release()
	if len(w.released) != 1 {
		t.Fatalf("released %v", w.released)
	}
	if err := k.Check(); err == nil || !strings.Contains(err.Error(), "proxy id 3") {
		t.Fatalf("check after release: %v", err)
	}
	if _, err := k.Hold(); err == nil {
		t.Fatal("hold after release")
	}
	if _, err := Claim(context.Background(), w, "proxy/3", other, w.opts()); err != nil {
		t.Fatalf("claim after the release: %v", err)
	}
}

// TestReleaseWaitsForHolds: a write stamped while the lease was valid
// holds it until its intents are appended: Release waits for that before
// it gives the lease up, so the next holder, which claims at once and
// then observes the log's last intents, finds them and starts its clock
// above them. A hold that does not end in time leaves the lease to
// expire (the next holder then waits the TTL, and stamps only after the
// old one's last stamp by more than the margin). (Release deleted the
// row while a stamped write's intent was still on its way: the next
// holder claimed at once, its clock did not see that version, and a skew
// of a few milliseconds let it stamp the same one.)
func TestReleaseWaitsForHolds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		endHold  bool // the write's append returns during Release's wait
		released bool
	}{
		{name: "the append returns", endHold: true, released: true},
		{name: "the append hangs", endHold: false, released: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld()
			o := w.opts()
			var done func()
			waited := make(chan struct{})
			o.Sleep = func(ctx context.Context, d time.Duration) error {
				close(waited)
				if tc.endHold {
					w.mu.Lock()
					n := len(w.released)
					w.mu.Unlock()
					if n != 0 {
						t.Errorf("released with a hold in flight")
					}
					done()
					select {
					case <-ctx.Done(): // the hold's end ends the wait
					case <-time.After(10 * time.Second):
						t.Error("the hold ended and Release still waits")
					}
					return ctx.Err()
				}
				return w.sleep(ctx, d)
			}
			k, err := Claim(context.Background(), w, "proxy/3", me, o)
			if err != nil {
				t.Fatal(err)
			}
			done, err = k.Hold()
			if err != nil {
				t.Fatal(err)
			}
			begin := w.clock()
			k.Release()
			// A hold that hangs is waited for a fifth of the TTL.
			if waited := w.clock().Sub(begin); !tc.endHold && waited != 3*time.Second {
				t.Fatalf("Release waited %s for a hanging hold, want the margin (3s)", waited)
			}
			select {
			case <-waited:
			default:
				t.Fatal("Release gave the lease up without waiting for the hold")
			}
			if got := len(w.released) == 1; got != tc.released {
				t.Fatalf("released %v, want %v", w.released, tc.released)
			}
			if err := k.Check(); err == nil {
				t.Fatal("valid after Release")
			}
		})
	}
}

// TestSuspendedPastTheLease: validity is measured on the monotonic clock,
// which Linux stops while the host is suspended or hibernated (a laptop,
// a hibernated cloud VM): a process that wakes up after the store let
// another process claim the id reads almost no time gone there, while its
// wall clock, which its versions carry, moved on into the new holder's
// times. The wall clock bounds validity too: stepped forward past the
// lease it ends it (until the next renewal); stepped back it changes
// nothing (the monotonic clock still bounds it). (The lease stayed valid
// for up to 4/5 of the TTL after the wake-up.)
func TestSuspendedPastTheLease(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		mono  time.Duration // monotonic time gone since the claim
		wall  time.Duration // wall time gone
		valid bool
	}{
		{name: "running", mono: 5 * time.Second, wall: 5 * time.Second, valid: true},
		{name: "suspended for a minute", mono: time.Second, wall: time.Minute, valid: false},
		// The margin holds on the wall clock too: 80% of the 15s TTL.
		{name: "wall clock 11s on", mono: 5 * time.Second, wall: 11 * time.Second, valid: true},
		{name: "wall clock 13s on, into the margin", mono: 5 * time.Second, wall: 13 * time.Second, valid: false},
		{name: "wall clock stepped back an hour", mono: 5 * time.Second, wall: -time.Hour, valid: true},
		{name: "wall clock stepped back, monotonic past the lease", mono: 13 * time.Second, wall: -time.Hour, valid: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld()
			o := w.opts()
			var mu sync.Mutex
			wall := w.clock()
			o.Wall = func() time.Time { mu.Lock(); defer mu.Unlock(); return wall }
			k, err := Claim(context.Background(), w, "proxy/3", me, o)
			if err != nil {
				t.Fatal(err)
			}
			w.sleep(context.Background(), tc.mono)
			mu.Lock()
			wall = wall.Add(tc.wall)
			mu.Unlock()
			if err := k.Check(); (err == nil) != tc.valid {
				t.Fatalf("check after %s (monotonic), %s (wall): %v, want valid %v", tc.mono, tc.wall, err, tc.valid)
			}
		})
	}
}

// TestClaimPolls: while another holder has the name, Claim asks the store
// again every tenth of the TTL, at least 100ms and at most a second
// apart: a crashed holder's name is taken that soon after its lease
// expires, and the store is not asked more often.
func TestClaimPolls(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ttl, every time.Duration
	}{
		{500 * time.Millisecond, 100 * time.Millisecond},
		{3 * time.Second, 300 * time.Millisecond},
		{15 * time.Second, time.Second},
		{time.Minute, time.Second},
	} {
		w := newWorld()
		if _, err := w.ClaimLease(context.Background(), "proxy/3", other, tc.ttl); err != nil {
			t.Fatal(err)
		}
		begin := w.clock()
		o := w.opts()
		o.TTL = tc.ttl
		if _, err := Claim(context.Background(), w, "proxy/3", me, o); err != nil {
			t.Fatalf("TTL %s: claim after the holder crashed: %v", tc.ttl, err)
		}
		claims := w.claims[1:] // the first is the holder's
		for i := 1; i < len(claims); i++ {
			if gap := claims[i].Sub(claims[i-1]); gap != tc.every {
				t.Fatalf("TTL %s: claims %s apart, want %s", tc.ttl, gap, tc.every)
			}
		}
		if took := w.clock().Sub(begin); took > tc.ttl+tc.every {
			t.Errorf("TTL %s: took %s after the holder crashed, want at most %s", tc.ttl, took, tc.ttl+tc.every)
		}
	}
}

// TestRenewalRetries: while renewals fail, Run tries again every quarter
// of the renewal period (TTL/3), but at least 50ms apart: the lease is
// valid again soon after the store is back, without hammering it.
func TestRenewalRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ttl, every time.Duration
	}{
		{15 * time.Second, 1250 * time.Millisecond},
		{300 * time.Millisecond, 50 * time.Millisecond},
	} {
		w := newWorld()
		o := w.opts()
		o.TTL = tc.ttl
		k, err := Claim(context.Background(), w, "proxy/3", me, o)
		if err != nil {
			t.Fatal(err)
		}
		w.down = true
		ctx, cancel := context.WithCancel(context.Background())
		w.tick = func(w *world) {
			w.mu.Lock()
			n := len(w.renewals)
			w.mu.Unlock()
			if n >= 5 {
				cancel()
			}
		}
		if err := k.Run(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if w.renewals[0].Sub(w.claims[0]) != tc.ttl/3 {
			t.Errorf("TTL %s: first renewal %s after the claim, want %s", tc.ttl, w.renewals[0].Sub(w.claims[0]), tc.ttl/3)
		}
		for i := 1; i < len(w.renewals); i++ {
			if gap := w.renewals[i].Sub(w.renewals[i-1]); gap != tc.every {
				t.Fatalf("TTL %s: failed renewals retried %s apart, want %s", tc.ttl, gap, tc.every)
			}
		}
	}
}

// TestClaimDefaults: with the default clocks Claim waits on a real timer
// for another holder, and gives up when its context ends meanwhile.
func TestClaimDefaults(t *testing.T) {
	t.Parallel()
	for _, cancelled := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		st := &heldOnce{held: other}
		if cancelled {
			st.onHeld = cancel
		}
		began := time.Now()
		k, err := Claim(ctx, st, "proxy/3", me, Options{TTL: time.Second})
		cancel()
		switch {
		case cancelled && !errors.Is(err, context.Canceled):
			t.Errorf("claim whose context ended while it waited: %v", err)
		case !cancelled && (err != nil || k.Check() != nil):
			t.Errorf("claim once the holder is gone: %v", err)
		case !cancelled && time.Since(began) < 100*time.Millisecond:
			t.Errorf("claimed again %s after the holder was seen, want 100ms", time.Since(began))
		}
	}
}

// heldOnce is a store where another holder has the name at the first
// claim only.
type heldOnce struct {
	world
	held   store.Lease
	onHeld func()
	asked  int
}

func (h *heldOnce) ClaimLease(ctx context.Context, name string, l store.Lease, ttl time.Duration) (store.Lease, error) {
	if h.asked++; h.asked == 1 {
		if h.onHeld != nil {
			h.onHeld()
		}
		return h.held, store.ErrLeaseHeld
	}
	l.Name = name
	return l, nil
}

// TestRenewalStalls: a renewal the store takes and does not answer
// (a stalled database, a Cassandra renewal retried through Paxos
// contention: longer than the TTL) is given up once its answer could no
// longer make the lease valid (validity counts from its start): the
// lapse is reported (the proxy's /healthz) and the next renewal tried,
// instead of waiting for the store's own timeout. (Run waited for the
// call however long it took: writes were refused while nothing said the
// renewals failed, and after the store recovered until the hung call
// ended.)
func TestRenewalStalls(t *testing.T) {
	t.Parallel()
	w := newWorld()
	o := w.opts()
	o.TTL = 500 * time.Millisecond // real time here: the stalled call's bound
	k, err := Claim(context.Background(), w, "proxy/3", me, o)
	if err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	w.stall = true
	w.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reported := make(chan error, 1)
	ran := make(chan error, 1)
	go func() {
		ran <- k.Run(ctx, func() {
			select {
			case reported <- k.Renewing():
			default:
			}
			cancel()
		})
	}()
	select {
	case err := <-reported:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the stalled renewal reported %v", err)
		}
	case err := <-ran:
		t.Fatalf("Run ended (%v) without reporting the stalled renewal", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("a stalled renewal was waited for without end, and nobody was told")
	}
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
}

// TestRenewsSoonAfterAClockStep: the wall clock stepped forward (or the
// host suspended: the monotonic clock stopped while the wall clock went
// on) ends the lease's validity here until the next renewal. Run renewed
// only when the monotonic clock reached a third of the TTL: writes were
// refused that long while /healthz, which renewals update, said nothing
// (a step 2s after the claim of a 15s lease: refused until 5s). Run looks
// at both clocks at least every TTL/15 and renews at once.
func TestRenewsSoonAfterAClockStep(t *testing.T) {
	t.Parallel()
	for _, step := range []time.Duration{time.Minute, 10 * time.Second} {
		w := newWorld()
		o := w.opts()
		claimed := w.clock()
		o.Wall = func() time.Time { // a step forward 2s after the claim
			now := w.clock()
			if now.Sub(claimed) >= 2*time.Second {
				return now.Add(step)
			}
			return now
		}
		k, err := Claim(context.Background(), w, "proxy/3", me, o)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var refused time.Duration // the longest run of Check refusing, as the ticks see it
		var since time.Time
		w.tick = func(w *world) {
			now := w.clock()
			switch err := k.Check(); {
			case err != nil && since.IsZero():
				since = now
			case err == nil && !since.IsZero():
				refused = max(refused, now.Sub(since))
				since = time.Time{}
			}
			if now.Sub(claimed) >= 20*time.Second {
				cancel()
			}
		}
		if err := k.Run(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if len(w.renewals) == 0 || w.renewals[0].Sub(claimed) > 3*time.Second {
			t.Errorf("wall clock %s on at 2s: first renewal at %v, want by 3s (the step seen within TTL/15)", step, w.renewals[0].Sub(claimed))
		}
		if refused > time.Second || !since.IsZero() {
			t.Errorf("wall clock %s on at 2s: writes refused for %s (still refused: %v); want at most TTL/15", step, refused, !since.IsZero())
		}
	}
}
