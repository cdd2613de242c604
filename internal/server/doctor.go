package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/wail-cdc/wail/internal/config"
)

// Doctor checks what a configuration needs, prints one line per check to w
// and returns an error naming the failed checks: the store is reachable,
// its schema (the catalog) is in place, and how far each replica lags.
func Doctor(ctx context.Context, cfg config.Config, w io.Writer) error {
	fmt.Fprintf(w, "config       ok (store %s, data dir %s)\n", cfg.Store.Kind, cfg.DataDir)
	st, err := OpenStore(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintf(w, "store        FAIL: %v\n", err)
		return fmt.Errorf("doctor: the store check failed")
	}
	defer st.Close()
	fmt.Fprintf(w, "store        ok (read levels %v)\n", st.Levels())
	var failed []string
	if c, ok := st.(interface{ Check(context.Context) error }); ok {
		if err := c.Check(ctx); err != nil {
			fmt.Fprintf(w, "schema       FAIL: %v\n", err)
			failed = append(failed, "schema")
		}
	}
	if tables, err := st.Tables(ctx); err != nil {
		fmt.Fprintf(w, "catalog      FAIL: %v\n", err)
		failed = append(failed, "catalog")
	} else {
		fmt.Fprintf(w, "catalog      ok (%d tables)\n", len(tables))
	}
	if r, ok := st.(interface {
		ReplicaLag(context.Context) ([]time.Duration, error)
	}); ok {
		lags, err := r.ReplicaLag(ctx)
		switch {
		case err != nil:
			fmt.Fprintf(w, "replicas     FAIL: %v\n", err)
			failed = append(failed, "replicas")
		case len(lags) == 0:
			fmt.Fprintf(w, "replicas     none configured\n")
		default:
			for i, l := range lags {
				fmt.Fprintf(w, "replica %-4d ok (lag %s)\n", i, l.Round(time.Millisecond))
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("doctor: failed checks: %v", failed)
	}
	return nil
}
