package server

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// lateBody returns what it holds to every Read, as an HTTP/2 body whose
// data arrived before the stream closed does.
type lateBody struct{ n int }

func (b *lateBody) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, io.EOF
	}
	n := min(len(p), b.n)
	b.n -= n
	return n, nil
}

func (*lateBody) Close() error { return nil }

// TestChargedBodyReadAfterReleaseHoldsNothing: a write stream's receiver
// may still read after its call ended and the guard gave the call's bytes
// back (writeStream.receive: a Read under way as the handler returns).
// What it reads then must not stay charged: nothing would give it back,
// and enough such reads would take api.max_request_bytes_in_flight for
// good.
func TestChargedBodyReadAfterReleaseHoldsNothing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		untilEOF bool
	}{{"write stream", false}, {"event stream", true}} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBodyBudget(prometheus.NewRegistry(), 1<<20)
			body := &chargedBody{ReadCloser: &lateBody{n: 64 << 10}, b: b, rpc: true, untilEOF: tc.untilEOF}
			p := make([]byte, 16<<10)
			if _, err := body.Read(p); err != nil {
				t.Fatal(err)
			}
			body.release() // the call ended
			if _, err := body.Read(p); err != nil {
				t.Fatal(err)
			}
			// the stopped stream drops the batch it read: nothing gives it back
			if used := b.used.Load(); used != 0 {
				t.Errorf("the budget holds %d bytes once the call ended; want 0", used)
			}
		})
	}
}

// finishedWriter is an HTTP/2 response writer whose handler returned:
// net/http's panics on SetReadDeadline then (its state is gone).
type finishedWriter struct {
	http.ResponseWriter
	t        *testing.T
	finished bool
}

func (w *finishedWriter) SetReadDeadline(time.Time) error {
	if w.finished {
		w.t.Error("SetReadDeadline after the handler returned: net/http's HTTP/2 writer panics, and the process with it")
	}
	return nil
}

// TestBatchDeadlineUntouchedAfterCall: a write stream's receiver that
// reads a batch's first bytes after its call ended (writeStream.receive)
// does not set the read deadline of the finished call.
func TestBatchDeadlineUntouchedAfterCall(t *testing.T) {
	w := &finishedWriter{t: t}
	b := newBodyBudget(prometheus.NewRegistry(), 1<<20)
	body := &chargedBody{ReadCloser: &lateBody{n: 64 << 10}, b: b, rpc: true, freed: make(chan struct{}, 1),
		batch: batchDeadline{rc: http.NewResponseController(w), timeout: time.Second}}
	p := make([]byte, 16<<10)
	if _, err := body.Read(p); err != nil { // a batch begins: the deadline runs
		t.Fatal(err)
	}
	body.Taken() // it arrived: lifted
	body.release()
	w.finished = true
	if _, err := body.Read(p); err != nil { // the next begins after the call ended
		t.Fatal(err)
	}
	body.Taken()
}
