package eventbus

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrBadFrom: a subscription start position could not be parsed.
var ErrBadFrom = errors.New(`invalid start position: use "beginning", "latest", "snapshot", a cursor, ` +
	`a time (RFC 3339, e.g. 2026-11-30T14:00:00Z, or -DURATION, e.g. -15m), "v<version>" or "@<offset>"`)

// Start is where a subscription begins.
type Start struct {
	Beginning bool
	Latest    bool
	// Snapshot delivers the current state of every key first, then the
	// events published after the subscription started.
	Snapshot bool
	// Cursor resumes after a cursor (its text form; decoded by Subscribe,
	// which knows the table).
	Cursor string
	// At starts every partition at its first event appended at or after
	// this time; Ago at or after this long before the subscription.
	At  time.Time
	Ago time.Duration
	// AfterVersion skips events with a version <= it (0: none).
	AfterVersion uint64
	// Offset starts every partition at this offset (-1: unused).
	Offset int64
}

// ParseStart parses "beginning" (also "earliest"), "latest" (also ""),
// "snapshot", a cursor, an RFC 3339 time, "-<duration>" (that long ago),
// "v<version>" or "@<offset>"; a bare number is taken as a version.
func ParseStart(s string) (Start, error) {
	switch {
	case s == "" || s == "latest":
		return Start{Latest: true, Offset: -1}, nil
	case s == "beginning" || s == "earliest":
		return Start{Beginning: true, Offset: -1}, nil
	case s == "snapshot":
		return Start{Snapshot: true, Offset: -1}, nil
	case IsCursor(s):
		return Start{Cursor: s, Offset: -1}, nil
	case s[0] == '-':
		d, err := time.ParseDuration(s[1:])
		if err != nil || d <= 0 {
			return Start{}, fmt.Errorf("%w: %s", ErrBadFrom, quoted(s))
		}
		return Start{Ago: d, Offset: -1}, nil
	case strings.ContainsAny(s, "T:"):
		at, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			if len(s) > maxQuoted { // the parse error quotes s whole
				return Start{}, fmt.Errorf("%w: %s: not an RFC 3339 time", ErrBadFrom, quoted(s))
			}
			return Start{}, fmt.Errorf("%w: %q: %w", ErrBadFrom, s, err)
		}
		return Start{At: at, Offset: -1}, nil
	case s[0] == '@':
		n, err := strconv.ParseInt(s[1:], 10, 64)
		if err != nil || n < 0 {
			return Start{}, fmt.Errorf("%w: %s", ErrBadFrom, quoted(s))
		}
		return Start{Offset: n}, nil
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "v"), 10, 64)
	if err != nil {
		return Start{}, fmt.Errorf("%w: %s", ErrBadFrom, quoted(s))
	}
	return Start{AfterVersion: n, Offset: -1}, nil
}
