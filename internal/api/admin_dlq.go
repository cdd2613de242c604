package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/reconcile"
	"github.com/wail-cdc/wail/internal/store"
)

// The operator tools of a table's dead-letter queue and reconcile
// (AdminService). The work is in packages dlq and reconcile; here are the
// table lookup, the request checks, the error codes, and one log line per
// change an operator made (redrive, drop, reconcile), for the record.

// table returns a table of the catalog, or NotFound.
func (a *AdminService) table(name string) (catalog.Table, error) {
	t, ok := a.tables.Get(name)
	if !ok {
		return t, connect.NewError(connect.CodeNotFound, fmt.Errorf("table %q does not exist (`wail table ls` lists the tables)", name))
	}
	return t, nil
}

// tableQueue is the dead-letter queue of t, of its incarnation: the
// resolutions it appends are void in the topic of a table dropped and
// created again meanwhile under the name.
func (a *AdminService) tableQueue(t catalog.Table) *dlq.Queue {
	var created int64
	if !t.CreatedAt.IsZero() {
		created = t.CreatedAt.UnixMicro()
	}
	return dlq.NewQueue(a.log, t.Name, created)
}

// toolErr maps an error of the dead-letter and reconcile tools to its code.
func toolErr(ctx context.Context, err error) error {
	code := connect.CodeUnavailable // the log or the store failed, or the resolver is behind: retry later
	switch {
	case errors.Is(err, dlq.ErrBadSelection), errors.Is(err, store.ErrBadLimit):
		code = connect.CodeInvalidArgument
	case errors.Is(err, dlq.ErrNotFound), errors.Is(err, store.ErrUnknownTable),
		errors.Is(err, intentlog.ErrUnknownTopic): // the table was dropped while the request ran
		code = connect.CodeNotFound
	case errors.Is(err, dlq.ErrRaced), // another request acted on a letter first
		errors.Is(err, reconcile.ErrRecreated): // the table was dropped and created again while the request ran
		code = connect.CodeAborted
	case errors.Is(err, dlq.ErrExpired): // the operator writes the key again or drops the letter
		code = connect.CodeFailedPrecondition
	case errors.Is(err, reconcile.ErrNoScan):
		code = connect.CodeUnimplemented
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, reconcile.ErrNotCaughtUp), errors.Is(err, dlq.ErrUnreadable),
		errors.Is(err, reconcile.ErrUnreadable), errors.Is(err, reconcile.ErrSlowLog):
		// Unavailable even when the store's own timeout is what expired.
	case errors.Is(ctx.Err(), context.DeadlineExceeded): // the caller's deadline passed
		code = connect.CodeDeadlineExceeded
	case ctx.Err() != nil: // the caller went away
		code = connect.CodeCanceled
	}
	return connect.NewError(code, err)
}

func (a *AdminService) ListDeadLetters(ctx context.Context, req *connect.Request[wailv1.ListDeadLettersRequest]) (*connect.Response[wailv1.ListDeadLettersResponse], error) {
	m := req.Msg
	q, err := a.queue(ctx, m.Table, m.Sink)
	if err != nil {
		return nil, err
	}
	after := int64(-1)
	if m.AfterOffset != nil {
		after = *m.AfterOffset
	}
	if after < -1 || m.Limit < 0 {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("after_offset %d, limit %d: after_offset must be -1 or more, limit 0 or more", after, m.Limit))
	}
	entries, more, err := q.List(ctx, dlq.ListOptions{IncludeSettled: m.IncludeSettled, After: after, Limit: int(m.Limit)})
	if err != nil {
		return nil, toolErr(ctx, err)
	}
	return connect.NewResponse(&wailv1.ListDeadLettersResponse{Entries: entries, More: more}), nil
}

func (a *AdminService) GetDeadLetter(ctx context.Context, req *connect.Request[wailv1.GetDeadLetterRequest]) (*connect.Response[wailv1.GetDeadLetterResponse], error) {
	m := req.Msg
	q, err := a.queue(ctx, m.Table, m.Sink)
	if err != nil {
		return nil, err
	}
	if m.Offset < 0 {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("offset %d: dead letters are at offsets 0 and up", m.Offset))
	}
	e, err := q.Get(ctx, m.Offset)
	if err != nil {
		return nil, toolErr(ctx, err)
	}
	return connect.NewResponse(&wailv1.GetDeadLetterResponse{Entry: e}), nil
}

func (a *AdminService) RedriveDeadLetters(ctx context.Context, req *connect.Request[wailv1.RedriveDeadLettersRequest]) (*connect.Response[wailv1.RedriveDeadLettersResponse], error) {
	m := req.Msg
	if m.Sink != "" {
		out, err := a.redriveSink(ctx, m)
		if err != nil {
			return nil, err
		}
		return connect.NewResponse(out), nil
	}
	t, err := a.table(m.Table)
	if err != nil {
		return nil, err
	}
	if m.Limit < 0 {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("limit %d: 0 or more", m.Limit))
	}
	got, err := a.tableQueue(t).Redrive(ctx, dlq.Selection{Offsets: m.Offsets, All: m.All, Limit: int(m.Limit)},
		a.op.ReconcileOptions(), reconcile.Table{Name: t.Name, Partitions: t.Partitions})
	if err != nil {
		return nil, toolErr(ctx, err)
	}
	a.logger.Info("dead letters redriven", "table", m.Table, "letters", got.Total, "all", m.All, "gaps_reconciled", got.Gap != nil)
	out := &wailv1.RedriveDeadLettersResponse{Resolutions: got.Resolutions, ResolutionsTotal: got.Total}
	if got.Gap != nil {
		out.GapReconcile = reconcileResponse(*got.Gap)
	}
	return connect.NewResponse(out), nil
}

func (a *AdminService) DropDeadLetters(ctx context.Context, req *connect.Request[wailv1.DropDeadLettersRequest]) (*connect.Response[wailv1.DropDeadLettersResponse], error) {
	m := req.Msg
	q, err := a.queue(ctx, m.Table, m.Sink)
	if err != nil {
		return nil, err
	}
	if m.Limit < 0 {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("limit %d: 0 or more", m.Limit))
	}
	res, err := q.Drop(ctx, dlq.Selection{Offsets: m.Offsets, All: m.All, Limit: int(m.Limit)}, time.Now())
	if err != nil {
		return nil, toolErr(ctx, err)
	}
	a.logger.Info("dead letters dropped: they get no event", "table", m.Table, "sink", m.Sink, "letters", res.Total, "all", m.All)
	return connect.NewResponse(&wailv1.DropDeadLettersResponse{Resolutions: res.Resolutions, ResolutionsTotal: res.Total}), nil
}

func (a *AdminService) ReconcileTable(ctx context.Context, req *connect.Request[wailv1.ReconcileTableRequest]) (*connect.Response[wailv1.ReconcileTableResponse], error) {
	m := req.Msg
	t, err := a.table(m.Name)
	if err != nil {
		return nil, err
	}
	o := a.op.ReconcileOptions()
	o.DryRun = m.DryRun
	r, err := a.tableQueue(t).Reconcile(ctx, o, reconcile.Table{Name: t.Name, Partitions: t.Partitions})
	if err != nil {
		return nil, toolErr(ctx, err)
	}
	rep := r.Report
	if !m.DryRun {
		a.logger.Info("table reconciled", "table", m.Name, "scanned", rep.Scanned, "behind", rep.Behind,
			"in_flight", rep.InFlight, "expired", rep.Expired, "gap_letters_settled", len(r.Settled), "gap_letters_open", len(r.Open))
	}
	out := reconcileResponse(rep)
	out.OpenGapLetters = r.Open
	return connect.NewResponse(out), nil
}

func reconcileResponse(rep reconcile.Report) *wailv1.ReconcileTableResponse {
	out := &wailv1.ReconcileTableResponse{KeysScanned: rep.Scanned, KeysBehind: rep.Behind, KeysInFlight: rep.InFlight, KeysExpired: rep.Expired}
	for _, k := range rep.Keys {
		out.Keys = append(out.Keys, reconciledKey(k))
	}
	for _, k := range rep.ExpiredKeys {
		out.ExpiredKeys = append(out.ExpiredKeys, reconciledKey(k))
	}
	return out
}

func reconciledKey(k reconcile.Key) *wailv1.ReconciledKey {
	return &wailv1.ReconciledKey{Partition: k.Partition, Key: k.Key, StoredVersion: k.Stored, LastEventVersion: k.LastEvent, Deleted: k.Deleted}
}
