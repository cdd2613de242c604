package api

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/proxy/proxytest"
	"github.com/wail-cdc/wail/internal/store"
)

// world is the intent log and the store under a real proxy.Proxy
// (package proxytest), so that ProducerService's tests see what its
// writes did: the intents logged (ABORTs included) and the rows stored.
type (
	world  = proxytest.World
	tables = proxytest.Tables
)

// worldProxy is a proxy on w with the tables tbs and limits.
func worldProxy(t *testing.T, w *world, tbs tables, limits proxy.Limits) *proxy.Proxy {
	t.Helper()
	clock, err := hlc.New(3, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Rows = map[string]store.Row{}
	return proxy.New(w.Log(), w.Store(), tbs, clock, limits, nil)
}

// newProxy is a proxy whose tables tx (transactional) and ind
// (independent) have a visibility window of a second.
func newProxy(t *testing.T, w *world) *proxy.Proxy {
	t.Helper()
	return worldProxy(t, w, proxytest.TxAndInd(time.Second), proxy.Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 10})
}

var (
	errStoreDown  = errors.New("store down")                           // outcome unknown
	errNotApplied = fmt.Errorf("%w: rolled back", store.ErrNotApplied) // definite
)

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
