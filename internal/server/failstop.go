package server

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"connectrpc.com/connect"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// Storage failures (DESIGN.md, "Failure handling"; docs/operations.md,
// "Storage: disk full, corruption, descriptors").
//
// The store and the embedded log report storage failures; the server turns
// them into health conditions and, where the durability of recent writes is
// unknown, into a fail stop:
//
//   - The store stopped (store.ErrStorage through failStopper; Pebble: any
//     write error, a read error, a panic inside Pebble): durability unknown,
//     only a restart recovers (the WAL replay keeps exactly the durable
//     writes). Fail stop.
//   - A log partition broke (intentlog.ErrStorage without ErrNoSpace: a
//     failed fsync, an I/O error): it refuses appends until the log is
//     reopened. Fail stop.
//   - The log's disk is full (intentlog.ErrNoSpace): the failed batch was
//     cut off again and nothing is acknowledged, so the log recovers by
//     itself once space returns. Unhealthy while it lasts; no stop.
//   - A read of a log partition finds damaged bytes (embedded.ErrReadCorrupt:
//     a CRC mismatch, a bad magic byte): the damage is at rest, a restart
//     finds it again and appends work; its readers stop there until
//     `wail log repair`. Degraded while it lasts; no stop.
//   - Reads of a log partition fail (embedded.ErrReadFailing: an I/O error
//     on a read): nothing changed and appends go on, but the partition's
//     resolver and subscriptions are stuck, and a restart does not mend a
//     disk. Degraded while it lasts (the log clears it once the failed
//     position reads again); no stop.
//
// Fail stop: the condition goes on the health registry as unhealthy with
// its reason and action, writes are refused at once (unavailable, naming
// the failure), then the server shuts down as for SIGTERM, within
// shutdown_timeout and at most failStopTimeout, and Run returns an error
// wrapping ErrFailStop: `wail serve` exits with ExitFailStop, and a
// supervisor restarts it. (Kafka halts a broker on a log directory
// failure; wail drains briefly first, since the side that still works
// can finish what is in flight.)

// ErrFailStop is wrapped by Run's error when the process stopped because
// its store or log failed in a way only a restart recovers from.
var ErrFailStop = errors.New("stopped after a storage failure")

// failStopTimeout bounds the shutdown after a fail stop (or
// shutdown_timeout, if shorter): the resolver cannot finish its work on a
// broken log, and a restart recovers everything it leaves.
const failStopTimeout = 5 * time.Second

// ExitFailStop is the exit status of `wail serve`, `wail proxy` and `wail
// resolve` after a fail stop (EX_IOERR of sysexits.h): restart the process,
// after freeing space if the disk is full.
const ExitFailStop = 74

// failStopper is a store that stops for good on a storage failure: Failed
// is closed then, and Failure says why (it wraps store.ErrStorage).
type failStopper interface {
	Failed() <-chan struct{}
	Failure() error
}

// watchStore fails the process stop when the store stops, until ctx ends.
func (s *Server) watchStore(ctx context.Context) {
	fs, ok := s.store.(failStopper)
	if !ok {
		return
	}
	select {
	case <-fs.Failed():
		s.failStop("store", fs.Failure())
	case <-ctx.Done():
	}
}

// logHealth is the embedded log's OnHealth: it must not block.
func (s *Server) logHealth(err error) {
	dir := s.cfg.DataDir + "/log"
	switch {
	case err == nil:
		if s.stopping.Load() == nil {
			s.health.Clear("log")
			s.logger.Info("the intent log takes appends and serves reads again")
		}
	case errors.Is(err, intentlog.ErrNoSpace):
		s.health.Set("log", health.Unhealthy,
			"the intent log's disk is full, writes fail (nothing is acknowledged): "+err.Error(),
			fmt.Sprintf("free space on the disk of %s (df -h %s; shorten log.retention); writes resume by themselves", dir, dir))
	case errors.Is(err, embedded.ErrReadCorrupt):
		s.health.Set("log", health.Degraded,
			"the intent log holds damaged data, the partition's resolver and subscriptions stop at it (appends go on): "+err.Error(),
			fmt.Sprintf("stop wail, copy %s aside, run `wail log repair %s` (it moves the damaged bytes to a quarantine file "+
				"and lists the lost offsets: docs/operations.md, \"Storage\"), start wail; or restore %s from a backup. "+
				"Check the disk (dmesg, smartctl -a); the condition clears by itself if the position reads fine again",
				s.cfg.DataDir, s.cfg.DataDir, s.cfg.DataDir))
	case errors.Is(err, embedded.ErrReadFailing): // before ErrStorage, which it wraps
		s.health.Set("log", health.Degraded,
			"the intent log's disk fails reads, the partition's resolver and subscriptions wait (appends go on): "+err.Error(),
			fmt.Sprintf("check the disk of %s (dmesg, smartctl -a); the condition clears by itself once the failed position reads again; "+
				"a segment file the disk cannot read any more: restore %s from a backup", dir, s.cfg.DataDir))
	default:
		s.failStop("log", err)
	}
}

// failStop reports a storage failure of component (store, log) that only a
// restart recovers from, refuses writes from now on, and makes Run shut
// down and return ErrFailStop. It does not block.
func (s *Server) failStop(component string, err error) {
	reason, action := failureText(component, err, s.cfg.DataDir)
	s.health.Set(component, health.Unhealthy, reason, action)
	cause := fmt.Errorf("%s: %w", component, err)
	if !s.stopping.CompareAndSwap(nil, &cause) {
		return
	}
	s.logger.Error("storage failure: wail stops taking writes and exits for a restart", "component", component, "err", err,
		"action", action, "exit_code", ExitFailStop)
	select {
	case s.failed <- cause:
	default:
	}
}

// failureText is the reason and action of a fail stop.
func failureText(component string, err error, dataDir string) (reason, action string) {
	dir := dataDir + "/" + component
	reason = fmt.Sprintf("the %s stopped after a storage failure, the durability of its latest writes is unknown: %v", component, err)
	fix := fmt.Sprintf("check the disk of %s (dmesg, SMART)", dir)
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, intentlog.ErrNoSpace) {
		fix = fmt.Sprintf("free space on the disk of %s (df -h %s)", dir, dir)
	}
	return reason, fmt.Sprintf("%s and restart wail (it exits with code %d for a supervisor; the restart keeps exactly the durable writes)", fix, ExitFailStop)
}

// refuseWhenStopping answers writes with unavailable once the process is
// stopping after a storage failure: nothing more is logged or stored.
func (s *Server) refuseWhenStopping() connect.Interceptor {
	return connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if cause := s.stopping.Load(); cause != nil && isWrite(req.Spec().Procedure) {
				return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf(
					"wail is stopping after a storage failure and writes nothing more; retry on another instance or after the restart (%v)", *cause))
			}
			return next(ctx, req)
		}
	})
}

func isWrite(procedure string) bool {
	switch procedure {
	case wailv1connect.ProducerServicePutProcedure, wailv1connect.ProducerServiceDeleteProcedure, wailv1connect.ProducerServiceWriteProcedure:
		return true
	}
	return false
}
