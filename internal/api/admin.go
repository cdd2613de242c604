package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/reconcile"
)

// Tables is the catalog AdminService changes and reads
// (catalog.Catalog).
type Tables interface {
	Create(ctx context.Context, def catalog.Table) (catalog.Table, bool, error)
	Alter(ctx context.Context, name string, a catalog.Alter) (catalog.Table, bool, error)
	Drop(ctx context.Context, name string, force bool, h catalog.DropHooks) error
	Get(name string) (catalog.Table, bool)
	// Resolving says whether a table is live (neither being created nor
	// being dropped).
	Resolving(name string) (catalog.Table, bool)
	List() []catalog.Table
}

// Operator is what AdminService needs of the process beyond the
// catalog: typed tables' schemas (registered with the schema registry),
// the hooks of a drop and the settings of reconcile and redrive.
type Operator interface {
	// CreateTypes registers a new table's key and value schemas and
	// returns their message names; its error is a *connect.Error.
	CreateTypes(ctx context.Context, table string, key, value *wailv1.TypeSchema) (keyMsg, valueMsg string, err error)
	// EvolveTypes registers new versions of a table's schemas; its error
	// is a *connect.Error.
	EvolveTypes(ctx context.Context, table string, key, value *wailv1.TypeSchema) (evolved bool, err error)
	// TableProto is a table as the API shows it.
	TableProto(t catalog.Table) *wailv1.Table
	DropHooks() catalog.DropHooks
	ReconcileOptions() reconcile.Options
}

// AdminService serves wail.v1.AdminService: tables (admin.go), dead
// letters and reconcile (admin_dlq.go).
type AdminService struct {
	tables Tables
	op     Operator
	log    intentlog.Log
	cfg    AdminConfig
	logger *slog.Logger
	sinks  Sinks // admin_sink.go
}

// AdminConfig are the settings AdminService answers with.
type AdminConfig struct {
	// CatalogRefresh is how often the catalog is reloaded (a drop waits
	// for two); ResolverGroup the resolvers' consumer group (its
	// committed offsets are a table's progress).
	CatalogRefresh time.Duration
	ResolverGroup  string
}

// NewAdminService returns the AdminService handler; log is the intent
// log (offsets, dead letters), logger takes one line per change an
// operator made.
func NewAdminService(tables Tables, op Operator, log intentlog.Log, cfg AdminConfig, logger *slog.Logger) *AdminService {
	return &AdminService{tables: tables, op: op, log: log, cfg: cfg, logger: logger}
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

func (a *AdminService) CreateTable(ctx context.Context, req *connect.Request[wailv1.CreateTableRequest]) (*connect.Response[wailv1.CreateTableResponse], error) {
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
	if def.KeyMessage, def.ValueMessage, err = a.op.CreateTypes(ctx, m.Name, m.KeySchema, m.ValueSchema); err != nil {
		return nil, err
	}
	t, created, err := a.tables.Create(ctx, def)
	if err != nil {
		return nil, connect.NewError(catalogCode(err), err)
	}
	return connect.NewResponse(&wailv1.CreateTableResponse{Table: a.op.TableProto(t), Created: created}), nil
}

func (a *AdminService) AlterTable(ctx context.Context, req *connect.Request[wailv1.AlterTableRequest]) (*connect.Response[wailv1.AlterTableResponse], error) {
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
	evolved, err := a.op.EvolveTypes(ctx, m.Name, m.KeySchema, m.ValueSchema)
	if err != nil {
		return nil, err
	}
	t, changed, err := a.tables.Alter(ctx, m.Name, alter)
	changed = changed || evolved
	if err != nil {
		return nil, connect.NewError(catalogCode(err), err)
	}
	return connect.NewResponse(&wailv1.AlterTableResponse{Table: a.op.TableProto(t), Changed: changed}), nil
}

// DropTable runs to its end even when the client stops waiting (a drop
// waits one catalog refresh, or three plus the table's visibility window
// when not forced, or longer after an alter shortened the window:
// catalog.Table.DrainWait), so that it never stops half way for that
// reason.
func (a *AdminService) DropTable(ctx context.Context, req *connect.Request[wailv1.DropTableRequest]) (*connect.Response[wailv1.DropTableResponse], error) {
	m := req.Msg
	drain := a.cfg.CatalogRefresh
	if t, ok := a.listed(m.Name); ok {
		drain = t.DrainWait(time.Now(), a.cfg.CatalogRefresh)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.CatalogRefresh+drain+adminTimeout)
	defer cancel()
	if err := a.tables.Drop(ctx, m.Name, m.Force, a.op.DropHooks()); err != nil {
		return nil, connect.NewError(catalogCode(err), err)
	}
	return connect.NewResponse(&wailv1.DropTableResponse{}), nil
}

func (a *AdminService) ListTables(context.Context, *connect.Request[wailv1.ListTablesRequest]) (*connect.Response[wailv1.ListTablesResponse], error) {
	out := &wailv1.ListTablesResponse{}
	for _, t := range a.tables.List() {
		out.Tables = append(out.Tables, a.op.TableProto(t))
	}
	return connect.NewResponse(out), nil
}

func (a *AdminService) DescribeTable(ctx context.Context, req *connect.Request[wailv1.DescribeTableRequest]) (*connect.Response[wailv1.DescribeTableResponse], error) {
	t, ok := a.listed(req.Msg.Name)
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("table "+req.Msg.Name+" does not exist"))
	}
	out := &wailv1.DescribeTableResponse{Table: a.op.TableProto(t)}
	if _, ok := a.tables.Resolving(t.Name); !ok {
		return connect.NewResponse(out), nil // being created or deleted: its topics may be missing
	}
	committed, err := a.log.Committed(ctx, a.cfg.ResolverGroup, intent.Topic(t.Name))
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	for p := int32(0); p < t.Partitions; p++ {
		_, iend, err := a.log.Bounds(ctx, intent.Topic(t.Name), p)
		if err != nil {
			return nil, connect.NewError(connect.CodeUnavailable, err)
		}
		_, eend, err := a.log.Bounds(ctx, eventbus.Topic(t.Name), p)
		if err != nil {
			return nil, connect.NewError(connect.CodeUnavailable, err)
		}
		out.IntentEndOffsets = append(out.IntentEndOffsets, iend)
		out.EventEndOffsets = append(out.EventEndOffsets, eend)
		out.CommittedOffsets = append(out.CommittedOffsets, committed[p])
	}
	return connect.NewResponse(out), nil
}

// listed returns a table in any state (being created, live, being
// dropped).
func (a *AdminService) listed(name string) (catalog.Table, bool) {
	for _, t := range a.tables.List() {
		if t.Name == name {
			return t, true
		}
	}
	return catalog.Table{}, false
}
