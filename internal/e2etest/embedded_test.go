package e2etest

import (
	"path/filepath"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

func openEmbedded(t *testing.T) Backends {
	dir := t.TempDir()
	log, err := embedded.Open(filepath.Join(dir, "log"), embedded.Options{})
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
	return Backends{Log: log, Store: st}
}

func TestInvariantsEmbedded(t *testing.T) {
	t.Parallel()
	Run(t, openEmbedded, DefaultOptions())
}
