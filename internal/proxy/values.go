package proxy

import (
	"context"
	"fmt"

	"github.com/wail-cdc/wail/internal/catalog"
)

// Typed tables: the proxy never parses values itself; the server gives it
// a Validator (checks and converts values before stamping) and a Printer
// (values as JSON for Get), both from the tables' schemas.

// Validator checks the key and value of a mutation of table t before it
// is stamped, and may replace m.Value (JSON converted to Protobuf binary).
// A value that does not fit is an error wrapping ErrInvalid that names the
// field and the problem; a schema that cannot be read, ErrUnavailable.
// The server implements it from the tables' schemas (typed tables).
type Validator interface {
	Validate(ctx context.Context, t catalog.Table, m *Mutation) error
}

// Printer prints a typed table's value as its message's Protobuf JSON.
type Printer interface {
	JSON(ctx context.Context, t catalog.Table, value []byte) ([]byte, error)
}

// SetValidator makes every write check its key and value with v before it
// is stamped. Call it before serving.
func (p *Proxy) SetValidator(v Validator) { p.values = v }

// checkValue runs the Validator, if any, on a mutation that passed the
// size checks; a value converted from JSON is checked against the size
// limit again.
func (p *Proxy) checkValue(ctx context.Context, t catalog.Table, m *Mutation) error {
	if p.values == nil {
		if m.JSON {
			return fmt.Errorf("%w: a JSON value needs a typed table; %s has no value message type", ErrInvalid, t.Name)
		}
		return nil
	}
	if err := p.values.Validate(ctx, t, m); err != nil {
		return err
	}
	if len(m.Value) > p.limits.MaxValueBytes {
		return fmt.Errorf("%w: value is %d bytes in Protobuf binary, the limit is %d (limits.max_value_bytes)", ErrInvalid, len(m.Value), p.limits.MaxValueBytes)
	}
	return nil
}

// SetPrinter makes Get print typed values as JSON when asked (GetJSON).
// Call it before serving.
func (p *Proxy) SetPrinter(pr Printer) { p.printer = pr }

// ValueJSON prints a value of table as JSON: ErrNoJSON when the table is
// not typed (or no Printer is set).
func (p *Proxy) ValueJSON(ctx context.Context, table string, value []byte) ([]byte, error) {
	t, ok := p.tables.Get(table)
	switch {
	case !ok:
		return nil, fmt.Errorf("%w %q", ErrUnknownTable, table)
	case t.ValueMessage == "" || p.printer == nil:
		return nil, fmt.Errorf("table %s is not typed: %w (leave out value_json, or give the table a value type)", table, ErrNoJSON)
	}
	return p.printer.JSON(ctx, t, value)
}
