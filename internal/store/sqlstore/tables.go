package sqlstore

import "sync"

// Tables is the set of wail tables known to exist on a store's primary: a
// cache that spares asking the primary. The zero value is an empty set,
// ready for use; a Tables is safe for concurrent use and must not be
// copied.
type Tables struct {
	mu    sync.RWMutex
	known map[string]struct{}
}

// Known reports whether table is known to exist.
func (t *Tables) Known(table string) bool {
	t.mu.RLock()
	_, ok := t.known[table]
	t.mu.RUnlock()
	return ok
}

// Remember records that table exists.
func (t *Tables) Remember(table string) {
	t.mu.Lock()
	if t.known == nil {
		t.known = make(map[string]struct{})
	}
	t.known[table] = struct{}{}
	t.mu.Unlock()
}

// Forget records that table is no longer known to exist (the primary
// said it has no such table).
func (t *Tables) Forget(table string) {
	t.mu.Lock()
	delete(t.known, table)
	t.mu.Unlock()
}

// Exists reports whether table exists: it is known to, or else ask (the
// primary) says so, and a yes is remembered.
func (t *Tables) Exists(table string, ask func() (bool, error)) (bool, error) {
	if t.Known(table) {
		return true, nil
	}
	ok, err := ask()
	if err != nil {
		return false, err
	}
	if ok {
		t.Remember(table)
	}
	return ok, nil
}

// Create runs create (idempotent DDL) and remembers the table once it
// succeeds. It runs create even for a known table: another process sharing
// the database may have dropped it since.
func (t *Tables) Create(table string, create func() error) error {
	if err := create(); err != nil {
		return err
	}
	t.Remember(table)
	return nil
}

// Drop runs drop (idempotent DDL) and forgets the table once it succeeds.
func (t *Tables) Drop(table string, drop func() error) error {
	if err := drop(); err != nil {
		return err
	}
	t.Forget(table)
	return nil
}
