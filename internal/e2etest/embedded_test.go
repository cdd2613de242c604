package e2etest

import (
	"path/filepath"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

func openEmbedded(t *testing.T) Backends {
	b, _ := openEmbeddedWith(t, embedded.Options{})
	return b
}

// openEmbeddedWith opens the embedded log with opts, and Pebble, in a
// temporary data directory.
func openEmbeddedWith(t *testing.T, opts embedded.Options) (Backends, *embedded.Log) {
	dir := t.TempDir()
	log, err := embedded.Open(filepath.Join(dir, "log"), opts)
	if err != nil {
		t.Fatal(err)
	}
	st, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		log.Close()
		st.Close()
	})
	return Backends{Log: log, Store: st}, log
}

func TestInvariantsEmbedded(t *testing.T) {
	t.Parallel()
	Run(t, openEmbedded, DefaultOptions())
}

// TestInvariantsEmbeddedSyncFilesystem: the invariants with the log's
// partitions sharing one syncfs per round (Linux >= 5.8; elsewhere the log
// falls back to an fsync per file).
func TestInvariantsEmbeddedSyncFilesystem(t *testing.T) {
	t.Parallel()
	Run(t, func(t *testing.T) Backends {
		b, _ := openEmbeddedWith(t, embedded.Options{SyncFilesystem: true})
		return b
	}, DefaultOptions())
}
