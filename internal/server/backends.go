package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/mysql"
	"github.com/wail-cdc/wail/internal/store/pebble"
	"github.com/wail-cdc/wail/internal/store/postgres"
)

// OpenLog opens the log (intent log and event bus) the configuration names.
func OpenLog(_ context.Context, cfg config.Config, logger *slog.Logger) (intentlog.Log, error) {
	if cfg.Log.Kind != config.LogEmbedded {
		return nil, fmt.Errorf("log kind %q is not supported by this build", cfg.Log.Kind)
	}
	l, err := embedded.Open(filepath.Join(cfg.DataDir, "log"), embedded.Options{
		SegmentBytes: cfg.Log.SegmentBytes, NoSync: cfg.Log.NoSync, Logger: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("open embedded log: %w", err)
	}
	return l, nil
}

// OpenStore opens the store the configuration names.
func OpenStore(ctx context.Context, cfg config.Config, logger *slog.Logger) (store.Store, error) {
	switch cfg.Store.Kind {
	case config.StorePebble:
		st, err := pebble.Open(filepath.Join(cfg.DataDir, "store"), pebble.Options{NoSync: cfg.Store.NoSync, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("open pebble store: %w", err)
		}
		return st, nil
	case config.StorePostgres:
		st, err := postgres.Open(ctx, postgres.Options{
			DSN: cfg.Store.DSN, ReplicaDSNs: cfg.Store.ReplicaDSNs, MaxConns: int32(cfg.Store.MaxConns),
			QueryTimeout: cfg.Store.QueryTimeout, Logger: logger,
		})
		if err != nil {
			return nil, fmt.Errorf("open postgres store: %w", err)
		}
		return st, nil
	case config.StoreMySQL:
		st, err := mysql.Open(ctx, mysql.Options{
			DSN: cfg.Store.DSN, ReplicaDSNs: cfg.Store.ReplicaDSNs, MaxConns: int32(cfg.Store.MaxConns),
			QueryTimeout: cfg.Store.QueryTimeout, Logger: logger,
		})
		if err != nil {
			return nil, fmt.Errorf("open mysql store: %w", err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("store kind %q is not supported", cfg.Store.Kind)
}
