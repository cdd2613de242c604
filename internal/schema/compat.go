package schema

import (
	"fmt"
	"strings"
)

// Level is a compatibility level, as the Confluent registry names it.
type Level string

// The compatibility levels. Backward is the default.
const (
	None               Level = "NONE"
	Backward           Level = "BACKWARD"
	BackwardTransitive Level = "BACKWARD_TRANSITIVE"
	Forward            Level = "FORWARD"
	ForwardTransitive  Level = "FORWARD_TRANSITIVE"
	Full               Level = "FULL"
	FullTransitive     Level = "FULL_TRANSITIVE"
)

// Levels lists every level.
var Levels = []Level{None, Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive}

// ParseLevel accepts a level's name in any case.
func ParseLevel(s string) (Level, error) {
	for _, l := range Levels {
		if strings.EqualFold(s, string(l)) {
			return l, nil
		}
	}
	names := make([]string, len(Levels))
	for i, l := range Levels {
		names[i] = string(l)
	}
	return "", fmt.Errorf("unknown compatibility level %q: use one of %s", s, strings.Join(names, ", "))
}

// Transitive reports whether the level checks every earlier version, not
// only the latest.
func (l Level) Transitive() bool { return strings.HasSuffix(string(l), "_TRANSITIVE") }

// backward: the new schema must read what earlier versions wrote.
func (l Level) backward() bool {
	return strings.HasPrefix(string(l), "BACKWARD") || strings.HasPrefix(string(l), "FULL")
}

// forward: earlier versions must read what the new schema writes.
func (l Level) forward() bool {
	return strings.HasPrefix(string(l), "FORWARD") || strings.HasPrefix(string(l), "FULL")
}

// Version is a registered schema a candidate is checked against.
type Version struct {
	Version int
	Schema  *Schema
	// Text is the schema as registered, quoted in error messages.
	Text string
}

// maxQuoted bounds how much of an old schema an error message quotes.
const maxQuoted = 10 * 1024

// Check decides whether candidate may be registered after previous (oldest
// first) at level. It returns nothing when it may, and otherwise the
// reasons, worded as the Confluent registry words them: one
// {errorType, description} per breaking change, then the old version and
// schema it breaks. A transitive level checks the versions newest first
// and stops at the first one broken.
func Check(level Level, candidate *Schema, previous []Version) []string {
	if level == None || len(previous) == 0 {
		return nil
	}
	olds := previous[len(previous)-1:]
	if level.Transitive() {
		olds = previous
	}
	for i := len(olds) - 1; i >= 0; i-- {
		old := olds[i]
		var msgs []string
		quote := false
		if level.forward() {
			// The old schema reads what the candidate writes.
			for _, d := range Incompatible(Diff(candidate, old.Schema)) {
				msgs = append(msgs, d.Describe("old", "new"))
			}
			quote = !level.backward() && len(msgs) > 0
		}
		if level.backward() {
			n := len(msgs)
			for _, d := range Incompatible(Diff(old.Schema, candidate)) {
				msgs = append(msgs, d.Describe("new", "old"))
			}
			quote = quote || len(msgs) > n
		}
		if len(msgs) == 0 {
			continue
		}
		if quote {
			msgs = append(msgs, fmt.Sprintf("{oldSchemaVersion: %d}", old.Version))
			text := old.Text
			if len(text) > maxQuoted {
				msgs = append(msgs, "{oldSchema: <truncated> '"+text[:maxQuoted]+"...'}")
			} else {
				msgs = append(msgs, "{oldSchema: '"+text+"'}")
			}
		}
		return msgs
	}
	return nil
}
