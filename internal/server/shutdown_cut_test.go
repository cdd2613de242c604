package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// TestCutStreamsSparesCalls: shutdown cuts the requests that stream until
// the client leaves (Subscribe, Consume, the console's tail) 100 ms after
// ending them, and no other: an Ack (a group member's acknowledgement,
// committed durably), a ResetGroup, ListGroups or DescribeGroup in flight,
// or a WriteStream, finishes within the HTTP server's share of
// shutdown_timeout. (Every EventService call was cut: an Ack whose commit
// took over 100 ms after the cut had its context canceled, or its answer
// cut, and the member was told its acknowledgement failed although it
// may have been committed.)
func TestCutStreamsSparesCalls(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path string
		cut  bool
	}{
		{wailv1connect.EventServiceSubscribeProcedure, true},
		{wailv1connect.EventServiceConsumeProcedure, true},
		{"/console/api/tail", true},
		{wailv1connect.EventServiceAckProcedure, false},
		{wailv1connect.EventServiceResetGroupProcedure, false},
		{wailv1connect.EventServiceListGroupsProcedure, false},
		{wailv1connect.EventServiceDescribeGroupProcedure, false},
		{wailv1connect.ProducerServiceWriteStreamProcedure, false},
	} {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			t.Parallel()
			var f inflight
			entered, cut := make(chan struct{}), make(chan struct{})
			canceled := make(chan bool, 1)
			srv := httptest.NewServer(f.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(entered)
				<-cut
				// Busy past the grace (a commit's fsync on a slow disk).
				select {
				case <-r.Context().Done():
					canceled <- true
					return
				case <-time.After(3 * streamCutGrace):
				}
				canceled <- false
				_, _ = io.WriteString(w, "answered")
			})))
			defer srv.Close()
			type answer struct {
				body string
				err  error
			}
			got := make(chan answer, 1)
			go func() {
				resp, err := http.Post(srv.URL+tc.path, "application/proto", strings.NewReader(""))
				if err != nil {
					got <- answer{err: err}
					return
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				got <- answer{string(b), err}
			}()
			<-entered
			f.cutStreams()
			close(cut)
			if c := <-canceled; c != tc.cut {
				t.Errorf("%s: context canceled by the cut: %t, want %t", tc.path, c, tc.cut)
			}
			a := <-got
			if !tc.cut && (a.err != nil || a.body != "answered") {
				t.Errorf("%s: answer %q, %v; want it whole", tc.path, a.body, a.err)
			}
		})
	}
}
