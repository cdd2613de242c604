package server

import (
	"context"
	"errors"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
)

// admin serves wail.v1.AdminService.
type admin struct {
	// Unimplemented answers CodeUnimplemented for the RPCs being built
	// (table alter/drop); remove it once all are. Dead letters and
	// reconcile: admin_dlq.go.
	wailv1connect.UnimplementedAdminServiceHandler
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
	}
	return connect.CodeUnavailable
}

func (a *admin) CreateTable(ctx context.Context, req *connect.Request[wailv1.CreateTableRequest]) (*connect.Response[wailv1.CreateTableResponse], error) {
	m := req.Msg
	t, created, err := a.s.catalog.Create(ctx, catalog.Table{
		Name:             m.Name,
		FailureMode:      catalog.FailureMode(m.FailureMode),
		VisibilityWindow: time.Duration(m.VisibilityWindowMs) * time.Millisecond,
		Partitions:       m.Partitions,
		MaxAttempts:      m.MaxAttempts,
		MaxRetryTime:     time.Duration(m.MaxRetryTimeMs) * time.Millisecond,
	})
	if err != nil {
		return nil, connect.NewError(catalogCode(err), err)
	}
	return connect.NewResponse(&wailv1.CreateTableResponse{Table: t.Proto(), Created: created}), nil
}

func (a *admin) ListTables(context.Context, *connect.Request[wailv1.ListTablesRequest]) (*connect.Response[wailv1.ListTablesResponse], error) {
	out := &wailv1.ListTablesResponse{}
	for _, t := range a.s.catalog.List() {
		out.Tables = append(out.Tables, t.Proto())
	}
	return connect.NewResponse(out), nil
}

func (a *admin) DescribeTable(ctx context.Context, req *connect.Request[wailv1.DescribeTableRequest]) (*connect.Response[wailv1.DescribeTableResponse], error) {
	t, ok := a.s.catalog.Get(req.Msg.Name)
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("table "+req.Msg.Name+" does not exist"))
	}
	out := &wailv1.DescribeTableResponse{Table: t.Proto()}
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
