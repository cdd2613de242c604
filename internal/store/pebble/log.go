package pebble

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// slogLogger routes Pebble's logging to slog: informational lines at Debug
// (Pebble is chatty on open and compaction), errors at Error.
type slogLogger struct {
	l *slog.Logger
	f *failure
}

func (s slogLogger) Infof(format string, args ...any) {
	if s.l.Enabled(context.Background(), slog.LevelDebug) {
		s.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (s slogLogger) Errorf(format string, args ...any) {
	s.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is called by Pebble on unrecoverable errors; it must not return.
// It fails the store, then panics: the store recovers the panic on its own
// calls (failstop.go); in a Pebble background job it ends the process.
func (s slogLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.l.Error(msg, "component", "pebble", "fatal", true)
	s.f.fail(errors.New("pebble: fatal: " + msg))
	panic("pebble: fatal: " + msg)
}
