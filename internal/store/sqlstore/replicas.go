package sqlstore

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// Replica identity. A read at a replica level is worth something only if
// the replica shows the primary's rows; each SQL store checks every new
// replica connection (postgres/identity.go, mysql/identity.go) and keeps
// here what it found: a replica refused fails its reads at once, with the
// reason, for RefusedRecheck, then a read tries a new connection, which is
// checked again.

// RefusedRecheck is how long a refused replica's reads fail without
// trying it again.
const RefusedRecheck = 10 * time.Second

// NotOurs is a replica refused for not showing the primary's rows; it is
// store.ErrUnavailable (the resolver reads the next level).
type NotOurs struct {
	Level, Addr, Why string
}

func (e *NotOurs) Error() string {
	return fmt.Sprintf("%s (%s) is not a replica of the primary's data: %s; fix the replica DSN (store.replica_dsns, --replica-dsn) or remove it: its reads go to the next level meanwhile",
		e.Level, e.Addr, e.Why)
}

func (e *NotOurs) Unwrap() error { return store.ErrUnavailable }

// Replicas is what a store knows of its replicas' identities, by index
// (the replica levels in order). Add them before use; the rest is safe
// for concurrent use.
type Replicas struct {
	reps  []*replica
	cfg   Breaker          // breaker.go
	clock func() time.Time // nil: time.Now (tests set it)
}

type replica struct {
	level, addr string
	refused     atomic.Pointer[refusal] // nil: not refused
	breaker     breaker                 // breaker.go
}

type refusal struct {
	err *NotOurs
	at  time.Time
}

// Add adds the next replica.
func (rs *Replicas) Add(level, addr string) {
	rs.reps = append(rs.reps, &replica{level: level, addr: addr})
}

// Addr is replica i's address.
func (rs *Replicas) Addr(i int) string { return rs.reps[i].addr }

// Refuse records that replica i's reads do not show the primary's rows
// (why), and returns the refusal; first says it was not refused before
// (the store then logs it, once, and drops the replica's connections).
func (rs *Replicas) Refuse(i int, why string) (err *NotOurs, first bool) {
	r := rs.reps[i]
	err = &NotOurs{Level: r.level, Addr: r.addr, Why: why}
	return err, r.refused.Swap(&refusal{err: err, at: time.Now()}) == nil
}

// Accept records that replica i's reads show the primary's rows; it
// reports whether it was refused until now.
func (rs *Replicas) Accept(i int) (wasRefused bool) { return rs.reps[i].refused.Swap(nil) != nil }

// Admit returns the refusal of the replica of level while its reads fail
// at once (RefusedRecheck), or *Bypassed while its breaker is open
// (breaker.go), or the read that may go to it (the primary's level, or a
// replica not refused or due to be tried again), whose outcome the
// caller reports to its Done.
func (rs *Replicas) Admit(level store.Level) (Read, error) {
	if level < 0 || int(level) >= len(rs.reps) {
		return Read{level: level}, nil
	}
	r := rs.reps[level]
	if f := r.refused.Load(); f != nil && time.Since(f.at) < RefusedRecheck {
		return Read{}, f.err
	}
	return rs.admit(level, rs.now())
}

// Recheck has the next read of refused replica i try it again at once,
// as after RefusedRecheck.
func (rs *Replicas) Recheck(i int) {
	r := rs.reps[i]
	if f := r.refused.Load(); f != nil {
		r.refused.CompareAndSwap(f, &refusal{err: f.err, at: time.Now().Add(-RefusedRecheck)})
	}
}

// Refused returns how many replicas are refused now.
func (rs *Replicas) Refused() int {
	n := 0
	for _, r := range rs.reps {
		if r.refused.Load() != nil {
			n++
		}
	}
	return n
}

// CheckAtOpen makes a connection to each of n replicas at once (connect,
// whose connection check refuses one that is not ours) and returns the
// refusals, joined: a replica that answers and is not ours fails Open.
// One that does not answer is passed to unreached (it is checked when it
// connects).
func CheckAtOpen(n int, connect func(i int) error, unreached func(i int, err error)) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := connect(i)
			var no *NotOurs
			switch {
			case err == nil:
			case errors.As(err, &no):
				errs[i] = no
			default:
				unreached(i, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
