package sqlstore

import (
	"errors"
	"testing"
)

func TestTables(t *testing.T) {
	t.Parallel()
	var tables Tables
	if tables.Known("t") {
		t.Fatal("an empty Tables knows t")
	}
	asks := 0
	ask := func(ok bool, err error) func() (bool, error) {
		return func() (bool, error) { asks++; return ok, err }
	}
	if ok, err := tables.Exists("t", ask(false, nil)); ok || err != nil || tables.Known("t") {
		t.Errorf("Exists when the primary says no: %v, %v", ok, err)
	}
	errDown := errors.New("down")
	if _, err := tables.Exists("t", ask(true, errDown)); err != errDown || tables.Known("t") {
		t.Errorf("Exists when the primary fails: %v", err)
	}
	if ok, err := tables.Exists("t", ask(true, nil)); !ok || err != nil || !tables.Known("t") {
		t.Errorf("Exists when the primary says yes: %v, %v", ok, err)
	}
	if ok, _ := tables.Exists("t", ask(false, nil)); !ok || asks != 3 {
		t.Errorf("Exists of a known table: %v after %d asks, want true after 3", ok, asks)
	}
	tables.Forget("t")
	if tables.Known("t") {
		t.Error("Forget kept t")
	}

	creates := 0
	create := func(err error) func() error { return func() error { creates++; return err } }
	if err := tables.Create("u", create(errDown)); err != errDown || tables.Known("u") {
		t.Errorf("Create that fails: %v", err)
	}
	if err := tables.Create("u", create(nil)); err != nil || !tables.Known("u") {
		t.Errorf("Create: %v", err)
	}
	// Another process may have dropped a known table: Create asks again.
	if err := tables.Create("u", create(nil)); err != nil || creates != 3 {
		t.Errorf("Create of a known table: %v after %d creates, want nil after 3", err, creates)
	}
	if err := tables.Drop("u", create(errDown)); err != errDown || !tables.Known("u") {
		t.Errorf("Drop that fails: %v", err)
	}
	if err := tables.Drop("u", create(nil)); err != nil || tables.Known("u") {
		t.Errorf("Drop: %v", err)
	}
}
