package pebble

import (
	"context"
	"fmt"
	"log/slog"
)

// slogLogger routes Pebble's logging to slog: informational lines at Debug
// (Pebble is chatty on open and compaction), errors at Error.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Infof(format string, args ...any) {
	if s.l.Enabled(context.Background(), slog.LevelDebug) {
		s.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (s slogLogger) Errorf(format string, args ...any) {
	s.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is called by Pebble on unrecoverable corruption; it must not return.
func (s slogLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.l.Error(msg, "component", "pebble", "fatal", true)
	panic("pebble: fatal: " + msg)
}
