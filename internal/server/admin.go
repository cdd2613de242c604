package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
)

// admin serves wail.v1.AdminService.
type admin struct {
	s *Server
}

func catalogCode(err error) connect.Code {
	switch {
	case errors.Is(err, catalog.ErrInvalid):
		return connect.CodeInvalidArgument
	case errors.Is(err, catalog.ErrConflict):
		return connect.CodeAlreadyExists
	case errors.Is(err, catalog.ErrNotFound):
		return connect.CodeNotFound
	case errors.Is(err, catalog.ErrBusy):
		return connect.CodeFailedPrecondition
	case errors.Is(err, catalog.ErrBudget):
		return connect.CodeResourceExhausted
	case errors.Is(err, context.DeadlineExceeded):
		return connect.CodeDeadlineExceeded
	}
	return connect.CodeUnavailable
}

// adminTimeout bounds a create or alter that the client no longer waits
// for: once begun, a table change finishes (or cleans up) on its own.
const adminTimeout = 2 * time.Minute

func (a *admin) CreateTable(ctx context.Context, req *connect.Request[wailv1.CreateTableRequest]) (*connect.Response[wailv1.CreateTableResponse], error) {
	m := req.Msg
	window, err := catalog.Millis("visibility_window_ms", m.VisibilityWindowMs, catalog.MaxVisibilityWindow)
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	retry, err := catalog.Millis("max_retry_time_ms", m.MaxRetryTimeMs, catalog.MaxMaxRetryTime)
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), adminTimeout)
	defer cancel()
	def := catalog.Table{
		Name:             m.Name,
		FailureMode:      catalog.FailureMode(m.FailureMode),
		VisibilityWindow: window,
		Partitions:       m.Partitions,
		MaxAttempts:      m.MaxAttempts,
		MaxRetryTime:     retry,
		SkipValidation:   m.SkipValidation,
	}
	if def.KeyMessage, def.ValueMessage, err = a.s.createTypes(ctx, m.Name, m.KeySchema, m.ValueSchema); err != nil {
		return nil, err
	}
	t, created, err := a.s.catalog.Create(ctx, def)
	if err != nil {
		return nil, connect.NewError(catalogCode(err), err)
	}
	return connect.NewResponse(&wailv1.CreateTableResponse{Table: a.s.tableProto(t), Created: created}), nil
}

func (a *admin) AlterTable(ctx context.Context, req *connect.Request[wailv1.AlterTableRequest]) (*connect.Response[wailv1.AlterTableResponse], error) {
	m := req.Msg
	var alter catalog.Alter
	if m.FailureMode != nil {
		mode := catalog.FailureMode(m.GetFailureMode())
		if mode != catalog.Transactional && mode != catalog.Independent {
			return nil, connect.NewError(connect.CodeInvalidArgument,
				fmt.Errorf("%w: failure_mode %s: use FAILURE_MODE_TRANSACTIONAL or FAILURE_MODE_INDEPENDENT", catalog.ErrInvalid, m.GetFailureMode()))
		}
		alter.FailureMode = &mode
	}
	if m.VisibilityWindowMs != nil {
		d, err := catalog.Millis("visibility_window_ms", m.GetVisibilityWindowMs(), catalog.MaxVisibilityWindow)
		if err != nil {
			return nil, connect.NewError(connect.CodeInvalidArgument, err)
		}
		alter.VisibilityWindow = &d
	}
	if m.MaxAttempts != nil {
		n := m.GetMaxAttempts()
		alter.MaxAttempts = &n
	}
	if m.MaxRetryTimeMs != nil {
		d, err := catalog.Millis("max_retry_time_ms", m.GetMaxRetryTimeMs(), catalog.MaxMaxRetryTime)
		if err != nil {
			return nil, connect.NewError(connect.CodeInvalidArgument, err)
		}
		alter.MaxRetryTime = &d
	}
	if m.SkipValidation != nil {
		skip := m.GetSkipValidation()
		alter.SkipValidation = &skip
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), adminTimeout)
	defer cancel()
	evolved, err := a.s.evolveTypes(ctx, m.Name, m.KeySchema, m.ValueSchema)
	if err != nil {
		return nil, err
	}
	t, changed, err := a.s.catalog.Alter(ctx, m.Name, alter)
	changed = changed || evolved
	if err != nil {
		return nil, connect.NewError(catalogCode(err), err)
	}
	return connect.NewResponse(&wailv1.AlterTableResponse{Table: a.s.tableProto(t), Changed: changed}), nil
}

// DropTable runs to its end even when the client stops waiting (a drop
// waits one catalog refresh, or two plus the table's visibility window
// when not forced), so that it never stops half way for that reason.
func (a *admin) DropTable(ctx context.Context, req *connect.Request[wailv1.DropTableRequest]) (*connect.Response[wailv1.DropTableResponse], error) {
	m := req.Msg
	var window time.Duration
	if t, ok := a.s.table(m.Name); ok {
		window = t.VisibilityWindow
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*a.s.cfg.CatalogRefresh+window+adminTimeout)
	defer cancel()
	if err := a.s.catalog.Drop(ctx, m.Name, m.Force, a.s.dropHooks()); err != nil {
		return nil, connect.NewError(catalogCode(err), err)
	}
	return connect.NewResponse(&wailv1.DropTableResponse{}), nil
}

func (a *admin) ListTables(context.Context, *connect.Request[wailv1.ListTablesRequest]) (*connect.Response[wailv1.ListTablesResponse], error) {
	out := &wailv1.ListTablesResponse{}
	for _, t := range a.s.catalog.List() {
		out.Tables = append(out.Tables, a.s.tableProto(t))
	}
	return connect.NewResponse(out), nil
}

func (a *admin) DescribeTable(ctx context.Context, req *connect.Request[wailv1.DescribeTableRequest]) (*connect.Response[wailv1.DescribeTableResponse], error) {
	t, ok := a.s.table(req.Msg.Name)
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("table "+req.Msg.Name+" does not exist"))
	}
	out := &wailv1.DescribeTableResponse{Table: a.s.tableProto(t)}
	if _, ok := a.s.catalog.Resolving(t.Name); !ok {
		return connect.NewResponse(out), nil // being created or deleted: its topics may be missing
	}
	committed, err := a.s.log.Committed(ctx, a.s.cfg.Resolver.Group, intent.Topic(t.Name))
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	for p := int32(0); p < t.Partitions; p++ {
		_, iend, err := a.s.log.Bounds(ctx, intent.Topic(t.Name), p)
		if err != nil {
			return nil, connect.NewError(connect.CodeUnavailable, err)
		}
		_, eend, err := a.s.log.Bounds(ctx, eventbus.Topic(t.Name), p)
		if err != nil {
			return nil, connect.NewError(connect.CodeUnavailable, err)
		}
		out.IntentEndOffsets = append(out.IntentEndOffsets, iend)
		out.EventEndOffsets = append(out.EventEndOffsets, eend)
		out.CommittedOffsets = append(out.CommittedOffsets, committed[p])
	}
	return connect.NewResponse(out), nil
}
