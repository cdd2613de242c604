package storetest

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/store"
)

// testCatalogEntry: a document kept in a catalog entry
// (store.CatalogEntry: the schema registry's, the sinks', the bearer
// tokens') is absent until saved, saved only over exactly what it
// replaces, never loses one of many concurrent compare-and-set edits, and
// is deleted by swapping in nil. The bearer tokens of
// security.auth.tokens_source catalog (auth.CatalogTokens) live there:
// tokens made at once all verify, and a revoked one is refused.
func testCatalogEntry(t *testing.T, s store.Store) {
	ctx := t.Context()
	e := store.CatalogEntry{Store: s, Name: store.ReservedPrefix + "storetest_doc"}
	swap := func(old, new string) bool {
		t.Helper()
		var o, n []byte
		if old != "" {
			o = []byte(old)
		}
		if new != "" {
			n = []byte(new)
		}
		ok, err := e.Swap(ctx, o, n)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	load := func() string {
		t.Helper()
		doc, err := e.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return string(doc)
	}
	if doc := load(); doc != "" {
		t.Fatalf("a document never saved: %q", doc)
	}
	if swap("0", "1") {
		t.Fatal("swapped over a document that is not there")
	}
	if !swap("", "1") || swap("", "2") || load() != "1" {
		t.Fatalf("create: the document is %q, want 1 (a second create refused)", load())
	}
	const workers, each = 4, 5
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				for {
					cur, err := e.Load(ctx)
					if err != nil {
						errs <- err
						return
					}
					n, _ := strconv.Atoi(string(cur))
					ok, err := e.Swap(ctx, cur, []byte(strconv.Itoa(n+1)))
					if err != nil {
						errs <- err
						return
					}
					if ok {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := strconv.Itoa(1 + workers*each)
	if doc := load(); doc != want {
		t.Fatalf("after %d concurrent increments of 1: %q, want %s (an edit was lost)", workers*each, doc, want)
	}
	if !swap(want, "") || load() != "" {
		t.Fatalf("delete: the document is %q", load())
	}

	tokens := auth.CatalogTokens(s)
	toks := make([]string, workers)
	errs = make(chan error, workers)
	for i := range workers {
		wg.Go(func() {
			_, err := auth.EditTokens(ctx, tokens, func(tf *auth.TokenFile) (err error) {
				toks[i], _, err = tf.Create(fmt.Sprintf("app%d", i), []auth.Grant{{Permission: auth.Produce, Tables: "orders"}}, time.Now())
				return err
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := auth.EditTokens(ctx, tokens, func(tf *auth.TokenFile) error { tf.Revoke("app0", time.Now()); return nil }); err != nil {
		t.Fatal(err)
	}
	tf, _, err := auth.LoadTokens(ctx, tokens)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tf.Verify(toks[0]); !errors.Is(err, auth.ErrRevokedToken) {
		t.Fatalf("the revoked token: %v, want ErrRevokedToken", err)
	}
	for i := 1; i < workers; i++ {
		if en, err := tf.Verify(toks[i]); err != nil || en.Name != fmt.Sprintf("app%d", i) {
			t.Fatalf("token %d of %d made at once: %+v, %v", i, workers, en, err)
		}
	}
}
