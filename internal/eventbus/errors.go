package eventbus

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// Conditions of the event streams and consumer groups that callers
// branch on (the API maps them to codes: package api). An error that is
// none of them (nor ErrBadFrom, ErrBadCursor, ErrSnapshotBusy or one of
// package group's) is the log failing: retry later.
var (
	// ErrNotFound: the table, or the group, does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: a request that can never succeed as it is.
	ErrInvalid = errors.New("invalid request")
	// ErrNoSnapshots: this server's store cannot list keys (no
	// Snapshots.Source), so from "snapshot" is not available.
	ErrNoSnapshots = errors.New("snapshots are not available")
	// ErrNoGroups: consumer groups are not served here (no WithGroups).
	ErrNoGroups = errors.New("consumer groups are not served here")
	// ErrSnapshotAborted: a member joined a start "snapshot" group from
	// "beginning" or "latest" while another took its snapshot, whose end
	// was then not committed; joining again takes the snapshot again.
	ErrSnapshotAborted = errors.New("group snapshot aborted")
	// ErrRetentionGap: retention removed events a stream that asked to
	// fail rather than skip them (SubscribeRequest.fail_on_gap) was to
	// deliver; the error is a *GapError, which says which.
	ErrRetentionGap = errors.New("events removed by retention")
)

// GapError is ErrRetentionGap with the partition and offsets removed.
type GapError struct {
	Table string
	Gap   *wailv1.RetentionGap
}

func gapError(table string, gap *wailv1.RetentionGap) error {
	return &GapError{Table: table, Gap: gap}
}

func (e *GapError) Error() string {
	return fmt.Sprintf("table %s partition %d: offsets [%d, %d) were removed by retention (log.event_retention) before this stream "+
		"read them, and it asked to fail rather than skip them (fail_on_gap): their events are lost to it; start again from "+
		`"beginning" (what is left) or "snapshot" (every key's current state), or without fail_on_gap to skip them; `+
		"raise log.event_retention above how long subscribers may stay away or fall behind",
		quoted(e.Table), e.Gap.Partition, e.Gap.From, e.Gap.To)
}

func (e *GapError) Unwrap() error { return ErrRetentionGap }

// kindError is err, with its message, that is also kind (errors.Is).
type kindError struct{ kind, err error }

func (e kindError) Error() string   { return e.err.Error() }
func (e kindError) Unwrap() []error { return []error{e.kind, e.err} }

func invalid(err error) error  { return kindError{ErrInvalid, err} }
func notFound(err error) error { return kindError{ErrNotFound, err} }

// maxQuoted bounds what an error quotes of a client's input.
const maxQuoted = 64

// quoted is s quoted (%q) for an error: only its first maxQuoted bytes
// (cut at a character's start), then its length, when it is longer. A
// client's megabyte of input, quoted whole, came back (and went to the
// logs) up to 12 times over: 4 bytes a control character, twice in a
// time's parse error (TestRefusalEchoBounded).
func quoted(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:cut], len(s))
}
