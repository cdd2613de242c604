package schemaregistry

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/wail-cdc/wail/internal/schema"
)

// compileGate bounds schema compiles, which cost CPU in proportion to the
// schema and its references (up to max_references files of
// max_schema_bytes each: seconds of CPU): at most cap(slots) run at once,
// and each, its wait for a slot included, within timeout. A client that
// keeps its connection open cannot make the server compile for longer,
// and clients together cannot take more cores than the slots (the writes
// share the process). A compile stops at its deadline between files.
//
// A schema already stored (compiled again after a start or when its cache
// entry is gone: for the writes and events of typed tables, for the
// compatibility checks against it) may also take the one slot of stored:
// it was accepted within these bounds once, and a flood of registrations,
// which take the shared slots, cannot make the writes of a typed table
// wait for it.
type compileGate struct {
	slots   chan struct{}
	stored  chan struct{}
	timeout time.Duration
}

func newCompileGate(lim Limits) *compileGate {
	return &compileGate{slots: make(chan struct{}, lim.MaxCompiles), stored: make(chan struct{}, 1), timeout: lim.CompileTimeout}
}

// run runs compile within the gate; stored: the schema is a stored one.
func (g *compileGate) run(ctx context.Context, stored bool, compile func(ctx context.Context) (*schema.Schema, error)) (*schema.Schema, error) {
	start := time.Now()
	gctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	own := g.stored
	if !stored {
		own = nil // a send on a nil channel is never ready
	}
	slot := g.slots
	select {
	case g.slots <- struct{}{}:
	case own <- struct{}{}:
		slot = own
	case <-gctx.Done():
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errf(http.StatusServiceUnavailable, CodeTimeout,
			"The operation timed out: %d schema compiles ran for %s, the most this server runs at once (schema_registry.max_compiles); retry later",
			cap(g.slots), g.timeout)
	}
	defer func() { <-slot }()
	waited := time.Since(start)
	s, err := compile(gctx)
	if err != nil && ctx.Err() == nil && errors.Is(gctx.Err(), context.DeadlineExceeded) {
		if waited > g.timeout/2 {
			// The wait for a slot took most of the time: the server is
			// busy, the schema may be fine (TestCompileGateLateSlot).
			return nil, errf(http.StatusServiceUnavailable, CodeTimeout,
				"The operation timed out: the schema waited %s of schema_registry.compile_timeout (%s) for one of the %d compiles this server runs at once "+
					"(schema_registry.max_compiles), and its compile did not end in the rest; retry later",
				waited.Round(time.Millisecond), g.timeout, cap(g.slots))
		}
		return nil, errf(http.StatusUnprocessableEntity, CodeTimeout,
			"The operation timed out: compiling the schema with its references took longer than schema_registry.compile_timeout (%s); "+
				"use fewer or smaller referenced files, or raise compile_timeout", g.timeout)
	}
	return s, err
}
