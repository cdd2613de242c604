package server

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/sink"
)

// groupTable is a served table as consumer groups (and sinks) see it.
func (s *Server) groupTable(name string) (group.Table, bool) {
	t, ok := s.catalog.Resolving(name)
	if !ok {
		return group.Table{}, false
	}
	return group.Table{Name: t.Name, Topic: eventbus.Topic(t.Name), Partitions: t.Partitions}, true
}

// configSinks saves the sinks of the configuration (sinks.webhooks).
func (s *Server) configSinks(ctx context.Context) error {
	var errs []error
	for _, w := range s.cfg.Sinks.Webhooks {
		def, err := w.Sink()
		if err == nil {
			err = s.sinks.Apply(ctx, def)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sink %s of table %s: %w", w.Name, w.Table, err))
		}
	}
	return errors.Join(errs...)
}

func sinkErr(err error) error {
	code := connect.CodeUnavailable
	switch {
	case errors.Is(err, sink.ErrInvalid):
		code = connect.CodeInvalidArgument
	case errors.Is(err, sink.ErrNotFound):
		code = connect.CodeNotFound
	case errors.Is(err, sink.ErrConflict):
		code = connect.CodeAlreadyExists
	case errors.Is(err, context.Canceled):
		code = connect.CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		code = connect.CodeDeadlineExceeded
	}
	return connect.NewError(code, err)
}

func (a *admin) CreateSink(ctx context.Context, req *connect.Request[wailv1.CreateSinkRequest]) (*connect.Response[wailv1.CreateSinkResponse], error) {
	def := req.Msg.GetSink()
	if def == nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("sink is required"))
	}
	if def.Table != "" && def.Table != req.Msg.Table {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("sink.table %q differs from table %q: leave it empty", def.Table, req.Msg.Table))
	}
	def = sink.WithDefaults(def)
	def.Table = req.Msg.Table
	out, created, err := a.s.sinks.Create(ctx, def)
	if err != nil {
		return nil, sinkErr(err)
	}
	return connect.NewResponse(&wailv1.CreateSinkResponse{Sink: out, Created: created}), nil
}

func (a *admin) ListSinks(ctx context.Context, req *connect.Request[wailv1.ListSinksRequest]) (*connect.Response[wailv1.ListSinksResponse], error) {
	sinks, err := a.s.sinks.List(ctx, req.Msg.Table)
	if err != nil {
		return nil, sinkErr(err)
	}
	return connect.NewResponse(&wailv1.ListSinksResponse{Sinks: sinks}), nil
}

func (a *admin) DescribeSink(ctx context.Context, req *connect.Request[wailv1.DescribeSinkRequest]) (*connect.Response[wailv1.DescribeSinkResponse], error) {
	st, err := a.s.sinks.Describe(ctx, req.Msg.Table, req.Msg.Name)
	if err != nil {
		return nil, sinkErr(err)
	}
	return connect.NewResponse(&wailv1.DescribeSinkResponse{Status: st}), nil
}

func (a *admin) PauseSink(ctx context.Context, req *connect.Request[wailv1.PauseSinkRequest]) (*connect.Response[wailv1.PauseSinkResponse], error) {
	out, err := a.s.sinks.SetPaused(ctx, req.Msg.Table, req.Msg.Name, true)
	if err != nil {
		return nil, sinkErr(err)
	}
	return connect.NewResponse(&wailv1.PauseSinkResponse{Sink: out}), nil
}

func (a *admin) ResumeSink(ctx context.Context, req *connect.Request[wailv1.ResumeSinkRequest]) (*connect.Response[wailv1.ResumeSinkResponse], error) {
	out, err := a.s.sinks.SetPaused(ctx, req.Msg.Table, req.Msg.Name, false)
	if err != nil {
		return nil, sinkErr(err)
	}
	return connect.NewResponse(&wailv1.ResumeSinkResponse{Sink: out}), nil
}

func (a *admin) DropSink(ctx context.Context, req *connect.Request[wailv1.DropSinkRequest]) (*connect.Response[wailv1.DropSinkResponse], error) {
	if err := a.s.sinks.Drop(ctx, req.Msg.Table, req.Msg.Name); err != nil {
		return nil, sinkErr(err)
	}
	return connect.NewResponse(&wailv1.DropSinkResponse{}), nil
}
