package cli

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// gapEvents serves subscriptions of "t" that report a retention gap of
// partition 1, offsets [3, 7), then end at the event at 7 (until end);
// asked to fail on gaps, they fail as the server does.
type gapEvents struct {
	wailv1connect.UnimplementedEventServiceHandler
}

func (gapEvents) Subscribe(_ context.Context, req *connect.Request[wailv1.SubscribeRequest], s *connect.ServerStream[wailv1.SubscribeResponse]) error {
	if req.Msg.FailOnGap {
		return connect.NewError(connect.CodeOutOfRange, errors.New(`table "t" partition 1: offsets [3, 7) were removed by retention`))
	}
	for _, m := range []*wailv1.SubscribeResponse{
		{Gap: &wailv1.RetentionGap{Partition: 1, From: 3, To: 7}, Cursor: "c1"},
		{Event: &wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Op: wailv1.Op_OP_UPSERT, Version: 9, Value: []byte("v")}, Partition: 1, Offset: 7, Cursor: "c2"},
		{Cursor: "c2"},
	} {
		if err := s.Send(m); err != nil {
			return err
		}
	}
	return nil
}

// Consume tells a member of the same gap, then fails (not found: not
// retried), so that consume ends.
func (gapEvents) Consume(_ context.Context, _ *connect.Request[wailv1.ConsumeRequest], s *connect.ServerStream[wailv1.ConsumeResponse]) error {
	for _, m := range []*wailv1.ConsumeResponse{
		{Granted: []*wailv1.PartitionGrant{{Partition: 1, Epoch: 1, Offset: 3}}},
		{Partition: 1, Epoch: 1, Next: 7, Gap: &wailv1.RetentionGap{Partition: 1, From: 3, To: 7}},
	} {
		if err := s.Send(m); err != nil {
			return err
		}
	}
	return connect.NewError(connect.CodeNotFound, errors.New("table dropped"))
}

// TestTailGap: tail says on stderr, in one line, what retention made it
// skip, and goes on; --fail-on-gap fails with the server's out_of_range.
func TestTailGap(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewEventServiceHandler(gapEvents{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	bg := context.Background()
	const notice = "gap: partition 1 offsets [3, 7) were removed by retention (log.event_retention) before tail read them: their events are skipped\n"
	for _, tc := range []struct {
		args                []string
		code                int
		wantOut, wantErrOut string
	}{
		{[]string{"--until-end"}, 0, "1/7 UPSERT key=k version=9 value=v\n", notice + "cursor: c2\n"},
		{[]string{"--until-end", "--json"}, 0, `"gap":{"partition":1,"from":"3","to":"7"}`, notice},
		{[]string{"--fail-on-gap"}, 1, "", "out_of_range: table \"t\" partition 1: offsets [3, 7) were removed by retention"},
	} {
		code, out, errOut := runCLI(bg, srv.URL, "", append([]string{"tail", "t"}, tc.args...)...)
		if code != tc.code || !strings.Contains(out, tc.wantOut) || !strings.Contains(errOut, tc.wantErrOut) {
			t.Errorf("tail %q: exit %d, stdout %q, stderr %q; want exit %d, %q, %q", tc.args, code, out, errOut, tc.code, tc.wantOut, tc.wantErrOut)
		}
	}
	const consumeNotice = "gap: partition 1 offsets [3, 7) were removed by retention (log.event_retention) before the group read them: their events are skipped\n"
	if _, _, errOut := runCLI(bg, srv.URL, "", "consume", "t", "--group", "g", "--member", "m"); !strings.Contains(errOut, consumeNotice) {
		t.Errorf("consume: stderr %q, want %q", errOut, consumeNotice)
	}
}
