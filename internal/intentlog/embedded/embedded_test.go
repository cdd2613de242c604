package embedded

import (
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/logtest"
)

func TestAcceptance(t *testing.T) {
	t.Run("Defaults", func(t *testing.T) {
		logtest.Run(t, func(t *testing.T, dir string) intentlog.Log {
			return openLog(t, dir, Options{})
		})
	})
	// Tiny segments and index interval: every test crosses segment
	// boundaries and index entries.
	t.Run("TinySegments", func(t *testing.T) {
		logtest.Run(t, func(t *testing.T, dir string) intentlog.Log {
			return openLog(t, dir, Options{SegmentBytes: 1 << 10, IndexIntervalBytes: 128})
		})
	})
	// One syncfs per round (Linux >= 5.8; elsewhere it falls back).
	t.Run("SyncFilesystem", func(t *testing.T) {
		logtest.Run(t, func(t *testing.T, dir string) intentlog.Log {
			return openLog(t, dir, Options{SyncFilesystem: true})
		})
	})
}

// openLog opens a Log for a test, with a quiet logger unless one is given.
func openLog(t testing.TB, dir string, o Options) *Log {
	t.Helper()
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	l, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return l
}
