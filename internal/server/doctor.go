package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/health"
)

// Doctor checks what a configuration needs, prints one line per check to w
// and returns an error naming the failed checks: the store is reachable,
// its schema (the catalog) is in place, and how far each replica lags.
// With addr set (a server's base URL), it first prints the health of the
// server answering there (see DoctorHealth); an unhealthy server fails the
// check, one that does not answer does not.
func Doctor(ctx context.Context, cfg config.Config, addr string, w io.Writer) error {
	fmt.Fprintf(w, "config       ok (store %s, data dir %s)\n", cfg.Store.Kind, cfg.DataDir)
	var failed []string
	answered := false
	if addr != "" {
		rep, err := DoctorHealth(ctx, addr, w)
		answered = err == nil
		if answered && rep.State == health.Unhealthy {
			failed = append(failed, "server")
		}
	}
	st, err := OpenStore(ctx, cfg, slog.New(slog.DiscardHandler))
	switch {
	case err != nil && answered && cfg.Store.Kind == config.StorePebble:
		fmt.Fprintf(w, "store        skipped: the embedded store is in use (by the server at %s?), whose health is above (%v)\n", addr, err)
		return doctorResult(failed)
	case err != nil:
		fmt.Fprintf(w, "store        FAIL: %v\n", err)
		return doctorResult(append(failed, "store"))
	}
	defer st.Close()
	fmt.Fprintf(w, "store        ok (read levels %v)\n", st.Levels())
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
	return doctorResult(failed)
}

func doctorResult(failed []string) error {
	if len(failed) > 0 {
		return fmt.Errorf("doctor: failed checks: %v", failed)
	}
	return nil
}

// healthTimeout bounds the question to a server's /healthz.
const healthTimeout = 3 * time.Second

// DoctorHealth asks the server at addr (a base URL) for its /healthz and
// prints its state and conditions (reason and action) to w. It returns an
// error, after printing that no server answered, when none did.
func DoctorHealth(ctx context.Context, addr string, w io.Writer) (health.Report, error) {
	var rep health.Report
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, addr+"/healthz?format=json", nil)
	if err != nil {
		return rep, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(w, "server       none answers at %s (health not checked)\n", addr)
		return rep, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&rep); err != nil {
		fmt.Fprintf(w, "server       FAIL: %s/healthz answered %s, not a health report: %v\n", addr, resp.Status, err)
		rep.State = health.Unhealthy
		return rep, nil
	}
	fmt.Fprintf(w, "server       %s at %s\n", rep.State, addr)
	for _, c := range rep.Conditions {
		fmt.Fprintf(w, "  %s %s: %s", c.State, c.Component, c.Reason)
		if c.Action != "" {
			fmt.Fprintf(w, " (%s)", c.Action)
		}
		fmt.Fprintf(w, " since %s\n", c.Since.UTC().Format(time.RFC3339))
	}
	return rep, nil
}
