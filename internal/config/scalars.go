package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// durationHint is what a duration setting takes.
const durationHint = "durations need a unit: 0s, 500ms, 10s, 2m, 168h, and are at most 2562047h"

// checkScalar decodes scalar n into a value of type t, as the decoder
// will, and names the key (name) of a value that does not fit: the
// decoder names only the Go type ("cannot unmarshal !!str `abc` into
// int"), and it cuts a fraction given for a whole number (partitions: 4.5
// was 4) without a word.
func checkScalar(n *yaml.Node, t reflect.Type, name string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	shown := n.Value
	if n.ShortTag() == "!!str" {
		shown = strconv.Quote(n.Value)
	}
	err := n.Decode(reflect.New(t).Interface())
	number := n.ShortTag() == "!!int" || n.ShortTag() == "!!float"
	switch {
	case t == reflect.TypeFor[time.Duration]():
		if err != nil {
			return fmt.Errorf("line %d: %s: %s is not a duration: %s", n.Line, name, shown, durationHint)
		}
	case isWholeKind(t.Kind()):
		if number && n.ShortTag() == "!!float" {
			if f, perr := strconv.ParseFloat(n.Value, 64); perr == nil && f != math.Trunc(f) {
				return fmt.Errorf("line %d: %s: %s is not a whole number", n.Line, name, shown)
			}
		}
		switch {
		case err == nil:
		case number:
			return fmt.Errorf("line %d: %s: %s is out of range for this setting", n.Line, name, shown)
		default:
			return fmt.Errorf("line %d: %s: %s is not a whole number", n.Line, name, shown)
		}
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		if err != nil {
			return fmt.Errorf("line %d: %s: %s is not a number", n.Line, name, shown)
		}
	case t.Kind() == reflect.Bool:
		if err != nil {
			return fmt.Errorf("line %d: %s: %s is not true or false", n.Line, name, shown)
		}
	case err != nil:
		return fmt.Errorf("line %d: %s: %s: %w", n.Line, name, shown, err)
	}
	return nil
}

// isWholeKind reports whether k is an integer kind.
func isWholeKind(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}
