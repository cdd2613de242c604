package eventbus

import "errors"

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
)

// kindError is err, with its message, that is also kind (errors.Is).
type kindError struct{ kind, err error }

func (e kindError) Error() string   { return e.err.Error() }
func (e kindError) Unwrap() []error { return []error{e.kind, e.err} }

func invalid(err error) error  { return kindError{ErrInvalid, err} }
func notFound(err error) error { return kindError{ErrNotFound, err} }
