package cassandra

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// keyResult is what the write of one key of a batch did.
type keyResult struct {
	applied bool
	stored  uint64 // the version that beat it, when not applied
	sent    bool   // the INSERT went out: a failure leaves its outcome unknown
	err     error
}

// Apply writes mutations last writer wins on their versions: per key (the
// highest version of the batch), a read of the stored version at the
// table's write consistency, then, if the new version is higher, the
// INSERT at that consistency with the version as the write timestamp.
// Keys are written concurrently, at most Options.InFlight at once.
//
// On error: if no INSERT was sent, or every one that was sent was refused
// before reaching a replica, the error wraps store.ErrNotApplied; if any
// key was written, or any INSERT's outcome is unknown (a timeout, a lost
// connection), the batch's outcome is unknown.
func (s *Store) Apply(ctx context.Context, table string, muts []store.Mutation) ([]store.Outcome, error) {
	if err := s.checkOpen(); err != nil {
		return nil, fmt.Errorf("cassandra: apply: %w", err)
	}
	if err := validTable(table); err != nil {
		return nil, fmt.Errorf("cassandra: apply: %w: %w: %w", store.ErrUnknownTable, store.ErrNotApplied, err)
	}
	b, err := sqlstore.NewBatch(muts, nil)
	if err != nil {
		return nil, fmt.Errorf("cassandra: apply: %w: %w", store.ErrNotApplied, err)
	}
	var out []store.Outcome
	ran := false
	// Not applied and the table unknown: no key was written (a retry on
	// the current generation's table is safe).
	gone := func(err error) bool {
		return errors.Is(err, store.ErrNotApplied) && errors.Is(err, store.ErrUnknownTable)
	}
	err = s.onTable(ctx, table, gone, func(q string) error {
		ran = true
		var err error
		out, err = s.apply(ctx, table, q, b, muts)
		return err
	})
	switch {
	case err != nil && !ran:
		return nil, fmt.Errorf("cassandra: apply to %q: %w: %w", table, store.ErrNotApplied, err)
	case err != nil:
		return nil, err
	}
	return out, nil
}

// apply writes b to Cassandra table q (Apply).
func (s *Store) apply(ctx context.Context, table, q string, b *sqlstore.Batch, muts []store.Mutation) ([]store.Outcome, error) {
	cl := s.writeConsistency(table)
	res := make([]keyResult, len(b.Keys))
	write := func(j int) {
		res[j] = s.writeKey(ctx, q, cl, b, j)
	}
	if len(res) == 1 {
		write(0)
	} else {
		var g errgroup.Group
		g.SetLimit(s.inFlight)
		for j := range res {
			g.Go(func() error { write(j); return nil })
		}
		_ = g.Wait() // writeKey reports in res
	}
	applied, stored, written, unknown, definite := tally(res)
	switch {
	case unknown == nil && definite == nil:
		return b.Outcomes(muts, applied, stored), nil
	case unknown == nil && written == 0:
		return nil, fmt.Errorf("cassandra: apply to %q: %w: %w", table, store.ErrNotApplied, s.classify(ctx, definite))
	case unknown == nil:
		// Not store.ErrNotApplied: some keys were written.
		return nil, fmt.Errorf("cassandra: apply to %q: %d of %d keys written, the others were not: %v", table, written, len(res), s.classify(ctx, definite))
	}
	return nil, fmt.Errorf("cassandra: apply to %q: outcome unknown (%d of %d keys written for sure): %w", table, written, len(res), s.classify(ctx, unknown))
}

// tally sorts what the writes of a batch's keys did: which were applied,
// the versions that beat the others, how many were written, the first
// failure that leaves a key's outcome unknown (an INSERT that went out and
// was not refused for sure) and the first that is certain (a version read
// that failed, before any INSERT; a refusal for sure).
func tally(res []keyResult) (applied []bool, stored []uint64, written int, unknown, definite error) {
	applied, stored = make([]bool, len(res)), make([]uint64, len(res))
	for j, r := range res {
		applied[j], stored[j] = r.applied, r.stored
		switch {
		case r.applied:
			written++
		case r.err != nil && r.sent && !notApplied(r.err):
			unknown = firstErr(unknown, r.err)
		case r.err != nil:
			definite = firstErr(definite, r.err)
		}
	}
	return applied, stored, written, unknown, definite
}

// firstErr keeps the first error.
func firstErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// writeKey writes one key: the read of its version, then the INSERT.
func (s *Store) writeKey(ctx context.Context, q string, cl Consistency, b *sqlstore.Batch, j int) keyResult {
	key, value, version, deleted, schemaID := b.Keys[j], b.Values[j], b.Versions[j], b.Deleted[j], b.SchemaIDs[j]
	var cur int64
	var unused int64
	// Every column, not only the version (versionStmt says why).
	err := asRead(s.session.Query(versionStmt(q), key).WithContext(withKey(ctx, key)).Consistency(cl), s.speculateAfter()).
		Scan(&cur, &unused, &unused, &unused)
	switch {
	case errors.Is(err, gocql.ErrNotFound):
	case err != nil:
		return keyResult{err: err}
	case cur >= version:
		return keyResult{stored: uint64(cur)}
	}
	// A coordinator that refused the write for sure (Unavailable: it does
	// not see enough replicas; bootstrapping; no connection) is followed
	// by another try, through the node the driver picks next, while the
	// write may still be sent (the same INSERT: idempotent).
	for try := 1; ; try++ {
		sctx, done, err := s.sendable(ctx, time.Now())
		if err != nil {
			return keyResult{err: err}
		}
		err = s.session.Query(insertStmt(q), key, value, version, deleted, schemaID, version).WithContext(withKey(sctx, key)).Consistency(cl).Idempotent(true).Exec()
		done()
		s.noteWriteError(err)
		if r, again := afterInsert(err, try); !again {
			return r
		}
	}
}

// afterInsert is what try number try of a key's INSERT, which ended with
// err, did, and whether to try again: only after a refusal that is
// certain (notApplied) by a coordinator that could not serve it, while
// writeTries allows. After any other failure the INSERT may have reached
// a replica: another try could be refused for sure, and the key then
// reported not applied although the first one landed.
func afterInsert(err error, try int) (keyResult, bool) {
	switch {
	case err == nil:
		return keyResult{applied: true, sent: true}, false
	case !notApplied(err) || !coordinatorCannotServe(err) && !errors.Is(err, gocql.ErrNoConnections) || try == writeTries:
		return keyResult{sent: true, err: err}, false
	}
	return keyResult{}, true
}

// writeTries bounds the tries of one INSERT refused for sure.
const writeTries = 3

// sendable says whether an INSERT may go out now: only when the cluster's
// own bound on it, write_request_timeout after the coordinator received
// it, ends before ctx's deadline, so that no replica applies it after the
// deadline. It returns the context to send it under: one that ends the
// bound before ctx's deadline, so that an INSERT delayed after this check
// (a prepare round trip on a node that has not prepared the statement, a
// re-prepare after UNPREPARED, a wait for the connection's writer) is not
// sent later than that; a query that reaches its end after going out has
// an unknown outcome, as one that reaches ctx's. The driver stops checking
// once it hands the frame to the socket: bytes that wait in a full socket
// buffer reach the coordinator later, which counts the bound from then
// (DESIGN.md). Without a deadline there is nothing to bound.
func (s *Store) sendable(ctx context.Context, now time.Time) (context.Context, context.CancelFunc, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}, nil
	}
	bound := s.writeBound()
	if left := deadline.Sub(now); left < bound {
		return nil, func() {}, fmt.Errorf("%w: %s left before the write's deadline, less than the cluster's write_request_timeout (%s) during which a replica "+
			"may still apply it, so it was not sent: raise the table's visibility window (the store write gets three quarters of it) "+
			"or lower write_request_timeout", store.ErrNotApplied, left.Round(time.Millisecond), bound)
	}
	sctx, cancel := context.WithDeadline(ctx, deadline.Add(-bound))
	return sctx, cancel, nil
}
