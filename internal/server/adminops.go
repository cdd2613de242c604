package server

import (
	"context"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/reconcile"
)

// adminService is the AdminService (internal/api) on this process's
// catalog, schema registry, intent log and resolver.
func (s *Server) adminService() *api.AdminService {
	a := api.NewAdminService(s.catalog, operator{s}, s.log,
		api.AdminConfig{CatalogRefresh: s.cfg.CatalogRefresh, ResolverGroup: s.cfg.Resolver.Group}, s.logger)
	if s.sinks != nil {
		a.WithSinks(s.sinks)
	}
	return a
}

// operator is the server as api.Operator.
type operator struct{ s *Server }

func (o operator) CreateTypes(ctx context.Context, table string, key, value *wailv1.TypeSchema) (string, string, error) {
	return o.s.createTypes(ctx, table, key, value)
}

func (o operator) EvolveTypes(ctx context.Context, table string, key, value *wailv1.TypeSchema) (bool, error) {
	return o.s.evolveTypes(ctx, table, key, value)
}

func (o operator) TableProto(t catalog.Table) *wailv1.Table { return o.s.tableProto(t) }

func (o operator) DropHooks() catalog.DropHooks { return o.s.dropHooks() }

func (o operator) ReconcileOptions() reconcile.Options { return o.s.reconcileOptions() }

// reconcileOptions are the backends and settings reconcile and redrive
// run with in this process.
func (s *Server) reconcileOptions() reconcile.Options {
	return reconcile.Options{
		Log: s.log, Bus: s.bus, Store: s.store, Group: s.cfg.Resolver.Group, ProxyID: s.cfg.ProxyID,
		Horizon: s.cfg.Resolver.DedupeHorizon, Compacted: s.cfg.Log.Kind == config.LogKafka,
		EventRetention: s.cfg.Log.EventRetention,
	}
}
