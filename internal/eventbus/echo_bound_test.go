package eventbus

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"
)

// TestRefusalEchoBounded: a refused start position or table name is
// quoted in the error, at most a few dozen bytes of it: a client's
// megabyte of input (control characters quote to four bytes each) is not
// sent back, nor logged, four times over.
func TestRefusalEchoBounded(t *testing.T) {
	t.Parallel()
	st := newStreams(t, 1, Limits{})
	huge := strings.Repeat("\x01", 1<<20)
	for _, tc := range []struct {
		table, from string
		code        connect.Code
		says        string
	}{
		{"t", "x" + huge, connect.CodeInvalidArgument, `"x\x01\x01`},
		{"t", "T" + huge, connect.CodeInvalidArgument, `"T\x01\x01`},
		{"t", "-" + huge, connect.CodeInvalidArgument, `"-\x01\x01`},
		{"t", "@" + huge, connect.CodeInvalidArgument, `"@\x01\x01`},
		{"t" + huge, "", connect.CodeNotFound, `"t\x01\x01`},
	} {
		err := streamErr(st.ctx, st.c, tc.table, tc.from)
		if connect.CodeOf(err) != tc.code || len(err.Error()) > 1024 || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "bytes") {
			t.Errorf("from %.8q table %.8q: %v (%d bytes), want %v quoting the start and the length, in at most 1 KiB",
				tc.from, tc.table, connect.CodeOf(err), len(err.Error()), tc.code)
		}
	}
}

// TestGroupRefusalEchoBounded: the group calls bound what they quote of a
// group, member or start a client sent; an acknowledgement's member is
// checked as a join's is (it was not: any string was quoted whole, as
// "not a member").
func TestGroupRefusalEchoBounded(t *testing.T) {
	t.Parallel()
	svc, _ := groupService(t)
	huge := strings.Repeat("\x01", 1<<20)
	noSnap := GroupSnapshot{Started: func() error { t.Error("a refused join started"); return nil }}
	// A live group, so that an acknowledgement's member is looked for.
	sess, err := svc.JoinGroup(t.Context(), "t", "g", "m", "", noSnap)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Leave()
	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"join, group", func() error { _, err := svc.JoinGroup(t.Context(), "t", "g"+huge, "m", "", noSnap); return err }, ErrInvalid},
		{"join, member", func() error { _, err := svc.JoinGroup(t.Context(), "t", "g", "m"+huge, "", noSnap); return err }, ErrInvalid},
		{"join, start", func() error { _, err := svc.JoinGroup(t.Context(), "t", "g", "m", "s"+huge, noSnap); return err }, ErrInvalid},
		{"ack, member", func() error { _, err := svc.AckGroup(t.Context(), "t", "g", "m"+huge, nil); return err }, ErrInvalid},
		{"snapshot end, member", func() error { return svc.AckSnapshotEnd("t", "g", "m"+huge, 1) }, ErrInvalid},
		{"reset, to", func() error { _, err := svc.ResetGroup(t.Context(), "t", "g", "x"+huge); return err }, ErrBadFrom},
	} {
		err := tc.call()
		if !errors.Is(err, tc.want) || len(err.Error()) > 1024 {
			t.Errorf("%s: %.100v (%d bytes), want %v in at most 1 KiB", tc.name, err, len(fmt.Sprint(err)), tc.want)
		}
	}
}

// TestBadFromQuotedAsSent: a refused start is quoted as the client sent
// it (a "v<version>" one was quoted without its v: "v" as "").
func TestBadFromQuotedAsSent(t *testing.T) {
	t.Parallel()
	for _, from := range []string{"v", "vx", "v-1", "Beginning"} {
		if _, err := ParseStart(from); !errors.Is(err, ErrBadFrom) || !strings.HasSuffix(err.Error(), ": "+fmt.Sprintf("%q", from)) {
			t.Errorf("%q: %v, want ErrBadFrom quoting %q", from, err, from)
		}
	}
}
