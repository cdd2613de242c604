package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/server/servertest"
)

// TestSinkCreatedAgainSaysItResumes: a sink dropped and created again
// under its name resumes its group's committed position (a drop keeps
// it), so its --start is not applied: `wail sink create` says so, and how
// to start over, instead of "starting at beginning" while nothing of the
// beginning is sent again (found by a black-box hunt: the operator
// re-created a sink with --start beginning to replay a table into a new
// endpoint, and it got nothing). A sink new to its name still says where
// it starts.
func TestSinkCreatedAgainSaysItResumes(t *testing.T) {
	t.Parallel()
	var posts atomic.Int64
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		posts.Add(1)
	}))
	defer ep.Close()
	url := servertest.Start(t, nil)
	must := mustCLI(t, url)
	must("table", "create", "t", "--partitions", "1")
	out := must("sink", "create", "t", "hook", "--webhook", ep.URL, "--start", "beginning")
	if !strings.Contains(out, "starting at beginning") || strings.Contains(out, "resum") {
		t.Fatalf("a new sink: %q, want it to say it starts at beginning", out)
	}
	must("put", "t", "k", "v1")
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(must("sink", "describe", "t", "hook"), "delivered:       1 events") {
		if time.Now().After(deadline) {
			t.Fatalf("the event was not delivered:\n%s", must("sink", "describe", "t", "hook"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	must("sink", "drop", "t", "hook")
	out = must("sink", "create", "t", "hook", "--webhook", ep.URL+"/new", "--start", "beginning")
	if strings.Contains(out, "starting at beginning") {
		t.Errorf("created again: %q claims it starts at beginning; it resumes group sink.hook's position", out)
	}
	for _, want := range []string{"resumes", "group sink.hook", "wail group reset t sink.hook"} {
		if !strings.Contains(out, want) {
			t.Errorf("created again: %q, want %q in it", out, want)
		}
	}
}
