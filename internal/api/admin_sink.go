package api

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/sink"
)

// Sinks are the webhook sinks AdminService's sink calls manage (package
// sink's Manager).
type Sinks interface {
	CreateSink(ctx context.Context, def *wailv1.Sink) (sink.Created, error)
	List(ctx context.Context, table string) ([]*wailv1.SinkStatus, error)
	Describe(ctx context.Context, table, name string) (*wailv1.SinkStatus, error)
	SetPaused(ctx context.Context, table, name string, paused bool) (*wailv1.Sink, error)
	Drop(ctx context.Context, table, name string) error
	// DeadLetters is the queue of a sink's dead letters; Redrive delivers
	// them again through the sink (package sink, redrive.go).
	DeadLetters(ctx context.Context, table, name string) (*dlq.Queue, error)
	Redrive(ctx context.Context, table, name string, sel dlq.Selection) (dlq.Answer, error)
}

// WithSinks serves the sink calls on sinks (without, they answer
// unimplemented); call it before serving.
func (a *AdminService) WithSinks(s Sinks) *AdminService {
	a.sinks = s
	return a
}

func sinkErr(err error) error {
	code := connect.CodeUnavailable
	if errors.Is(err, errNoSinks) {
		code = connect.CodeUnimplemented
	}
	switch {
	case errors.Is(err, sink.ErrInvalid):
		code = connect.CodeInvalidArgument
	case errors.Is(err, sink.ErrNotFound):
		code = connect.CodeNotFound
	case errors.Is(err, sink.ErrConflict):
		code = connect.CodeAlreadyExists
	case errors.Is(err, dlq.ErrRaced):
		code = connect.CodeAborted
	case errors.Is(err, sink.ErrNotRunning), errors.Is(err, sink.ErrCannotRedrive):
		code = connect.CodeFailedPrecondition
	case errors.Is(err, dlq.ErrBadSelection):
		code = connect.CodeInvalidArgument
	case errors.Is(err, dlq.ErrNotFound):
		code = connect.CodeNotFound
	case errors.Is(err, context.Canceled):
		code = connect.CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		code = connect.CodeDeadlineExceeded
	}
	return connect.NewError(code, err)
}

func (a *AdminService) CreateSink(ctx context.Context, req *connect.Request[wailv1.CreateSinkRequest]) (*connect.Response[wailv1.CreateSinkResponse], error) {
	sinks, err := a.sinksOrErr()
	if err != nil {
		return nil, err
	}
	def := req.Msg.GetSink()
	if def == nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("sink is required"))
	}
	if def.Table != "" && def.Table != req.Msg.Table {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("sink.table %q differs from table %q: leave it empty", def.Table, req.Msg.Table))
	}
	def = sink.WithDefaults(def)
	def.Table = req.Msg.Table
	c, err := sinks.CreateSink(ctx, def)
	if err != nil {
		return nil, sinkErr(err)
	}
	return connect.NewResponse(&wailv1.CreateSinkResponse{Sink: c.Sink, Created: c.Created, Resumed: c.Resumed}), nil
}

func (a *AdminService) ListSinks(ctx context.Context, req *connect.Request[wailv1.ListSinksRequest]) (*connect.Response[wailv1.ListSinksResponse], error) {
	sinks, err := a.sinksOrErr()
	if err != nil {
		return nil, err
	}
	list, err := sinks.List(ctx, req.Msg.Table)
	if err != nil {
		return nil, sinkErr(err)
	}
	return connect.NewResponse(&wailv1.ListSinksResponse{Sinks: list}), nil
}

func (a *AdminService) DescribeSink(ctx context.Context, req *connect.Request[wailv1.DescribeSinkRequest]) (*connect.Response[wailv1.DescribeSinkResponse], error) {
	sinks, err := a.sinksOrErr()
	if err != nil {
		return nil, err
	}
	st, err := sinks.Describe(ctx, req.Msg.Table, req.Msg.Name)
	if err != nil {
		return nil, sinkErr(err)
	}
	return connect.NewResponse(&wailv1.DescribeSinkResponse{Status: st}), nil
}

func (a *AdminService) PauseSink(ctx context.Context, req *connect.Request[wailv1.PauseSinkRequest]) (*connect.Response[wailv1.PauseSinkResponse], error) {
	sinks, err := a.sinksOrErr()
	if err != nil {
		return nil, err
	}
	out, err := sinks.SetPaused(ctx, req.Msg.Table, req.Msg.Name, true)
	if err != nil {
		return nil, sinkErr(err)
	}
	return connect.NewResponse(&wailv1.PauseSinkResponse{Sink: out}), nil
}

func (a *AdminService) ResumeSink(ctx context.Context, req *connect.Request[wailv1.ResumeSinkRequest]) (*connect.Response[wailv1.ResumeSinkResponse], error) {
	sinks, err := a.sinksOrErr()
	if err != nil {
		return nil, err
	}
	out, err := sinks.SetPaused(ctx, req.Msg.Table, req.Msg.Name, false)
	if err != nil {
		return nil, sinkErr(err)
	}
	return connect.NewResponse(&wailv1.ResumeSinkResponse{Sink: out}), nil
}

func (a *AdminService) DropSink(ctx context.Context, req *connect.Request[wailv1.DropSinkRequest]) (*connect.Response[wailv1.DropSinkResponse], error) {
	sinks, err := a.sinksOrErr()
	if err != nil {
		return nil, err
	}
	if err := sinks.Drop(ctx, req.Msg.Table, req.Msg.Name); err != nil {
		return nil, sinkErr(err)
	}
	return connect.NewResponse(&wailv1.DropSinkResponse{}), nil
}

var errNoSinks = errors.New("this server does not manage webhook sinks")

// sinksOrErr is the sinks, or why not.
func (a *AdminService) sinksOrErr() (Sinks, error) {
	if a.sinks == nil {
		return nil, sinkErr(errNoSinks)
	}
	return a.sinks, nil
}

// queue returns the dead-letter queue a request names: the table's, or
// with sink set that sink's (NotFound when neither exists).
func (a *AdminService) queue(ctx context.Context, table, sinkName string) (*dlq.Queue, error) {
	t, err := a.table(table)
	if err != nil {
		return nil, err
	}
	if sinkName == "" {
		return a.tableQueue(t), nil
	}
	sinks, err := a.sinksOrErr()
	if err != nil {
		return nil, err
	}
	q, err := sinks.DeadLetters(ctx, table, sinkName)
	if err != nil {
		return nil, sinkErr(err)
	}
	return q, nil
}

// redriveSink redrives a sink's dead letters.
func (a *AdminService) redriveSink(ctx context.Context, m *wailv1.RedriveDeadLettersRequest) (*wailv1.RedriveDeadLettersResponse, error) {
	if _, err := a.table(m.Table); err != nil {
		return nil, err
	}
	sinks, err := a.sinksOrErr()
	if err != nil {
		return nil, err
	}
	if m.Limit < 0 {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("limit %d: 0 or more", m.Limit))
	}
	res, err := sinks.Redrive(ctx, m.Table, m.Sink, dlq.Selection{Offsets: m.Offsets, All: m.All, Limit: int(m.Limit)})
	if res.Total > 0 {
		a.logger.Info("sink dead letters redriven", "table", m.Table, "sink", m.Sink, "letters", res.Total, "all", m.All)
	}
	if err != nil {
		return nil, sinkErr(err)
	}
	return &wailv1.RedriveDeadLettersResponse{Resolutions: res.Resolutions, ResolutionsTotal: res.Total}, nil
}

// hideSinkURLs hides, in a ListSinks or DescribeSink answer, the path and
// query of the URL of each sink whose table the caller has no admin
// permission on (sink.HideURL): those calls take consume, and a sink's
// URL often is a credential (a token in its path, a Slack-style webhook
// URL whole), which only who may create sinks should read.
func (g *Guard) hideSinkURLs(ctx context.Context, resp any) {
	var sts []*wailv1.SinkStatus
	switch m := resp.(type) {
	case *wailv1.ListSinksResponse:
		sts = m.GetSinks()
	case *wailv1.DescribeSinkResponse:
		sts = []*wailv1.SinkStatus{m.GetStatus()}
	default:
		return
	}
	id := identityOf(ctx)
	for _, st := range sts {
		if !auth.Allowed(id.grants, auth.Admin, []string{st.GetSink().GetTable()}) {
			sink.HideURL(st)
		}
	}
}
