package sink

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// TestSlowAnswerBodyBounded: an endpoint that takes the batch, answers
// 200 at once and then trickles its body (a byte a second, of a declared
// 100000) cost every batch the whole request timeout, since the answer's
// body was drained within it, for connection reuse: a sink with the
// default 10 s delivered 100 events per partition every 10 s, "running"
// and with no error to say why its lag grew (found by a black-box hunt).
// The batch is delivered all the same, at once: what follows the answer's
// head is drained for at most drainTimeout, then the connection is closed.
func TestSlowAnswerBodyBounded(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusInternalServerError} {
		start := time.Now()
		a := hostilePost(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Length", "100000")
			w.WriteHeader(status)
			for range 100 {
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(time.Second):
				}
			}
		})
		took := time.Since(start)
		if a.status != status {
			t.Fatalf("attempt %+v, want status %d", a, status)
		}
		if status == http.StatusOK && a.err != nil {
			t.Errorf("a 200 with a slow body: %v, want it delivered", a.err)
		}
		if took > drainTimeout+time.Second {
			t.Errorf("status %d with a slow body took %s (the request timeout is 5s), want at most %s", status, took.Round(time.Millisecond), drainTimeout+time.Second)
		}
	}
}
