package sink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// hostilePost posts one request to an endpoint answering with h.
func hostilePost(t *testing.T, h http.HandlerFunc) attempt {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	def := WithDefaults(&wailv1.Sink{Table: testTable, Name: "h", Url: srv.URL + "/hook", TimeoutMs: 5000})
	return post(context.Background(), NewHTTPClient(nil), def, "d", 1, []byte("{}"), "application/json", time.Now())
}

// TestErrorFromAnswerBounded: what an endpoint answers ends up in the
// sink's last error (describe, /healthz) and in the dead letter of every
// event of the batch. A Location header is read whole by net/http (up to
// the 64 KiB of headers): quoted whole, a batch of 10000 events wrote
// 640 MB of dead letters. It is cut like the body's excerpt.
func TestErrorFromAnswerBounded(t *testing.T) {
	loc := "/elsewhere?" + strings.Repeat("a", 60<<10)
	a := hostilePost(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusFound)
	})
	if a.status != http.StatusFound || a.err == nil {
		t.Fatalf("attempt %+v, want a 302 not followed", a)
	}
	if n := len(a.err.Error()); n > 2*maxErrorBody {
		t.Errorf("error of %d bytes from a long Location, want at most %d", n, 2*maxErrorBody)
	}
}

// TestErrorFromAnswerPrintable: the body's excerpt (and a Location) is
// the endpoint's to choose; `wail sink describe` prints the last error as
// it is, and `dlq show` a letter's: line breaks forged lines of the
// output, escape sequences drove the operator's terminal. They are shown
// as spaces and '?'.
func TestErrorFromAnswerPrintable(t *testing.T) {
	for _, c := range []struct {
		name string
		h    http.HandlerFunc
	}{
		{"body", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "busy\r\nlast error:      none\x1b[2J\x1b]8;;http://x\x07\x00\u202eevil")
		}},
		{"location", func(w http.ResponseWriter, r *http.Request) {
			// net/http reads no control character in a header, but a
			// bidi override is UTF-8 like any other (net/http writes
			// neither: answer by hand)
			c, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			_, _ = buf.WriteString("HTTP/1.1 301 Moved\r\nContent-Length: 0\r\nLocation: /x\u202eevil\r\n\r\n")
			_ = buf.Flush()
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := hostilePost(t, c.h)
			if a.err == nil {
				t.Fatalf("attempt %+v: no error", a)
			}
			msg := a.err.Error()
			for _, r := range msg {
				if r != ' ' && !unicode.IsPrint(r) || unicode.Is(unicode.Bidi_Control, r) {
					t.Fatalf("error %q holds %U", msg, r)
				}
			}
			if c.name == "body" && !strings.Contains(msg, "busy") {
				t.Errorf("error %q lost the answer's text", msg)
			}
		})
	}
}

// TestStoredTimeoutBound: a definition read from the store is not checked
// as a create checks it (timeout_ms 1..600000): a negative timeout_ms, or
// one whose milliseconds overflow a time.Duration to 0 or less, made every
// request's deadline pass before it was sent (every event dead-lettered);
// a vast one left an endpoint that never answers holding its partition
// for good. Now a timeout_ms below 1 takes the default (10s), one above
// 600000 that bound.
func TestStoredTimeoutBound(t *testing.T) {
	for ms, want := range map[int64]time.Duration{1 << 50: maxTimeout, 1 << 62: maxTimeout, -1: DefaultTimeout, 0: DefaultTimeout, 1: time.Millisecond} {
		if got := requestTimeout(&wailv1.Sink{TimeoutMs: ms}); got != want {
			t.Errorf("timeout_ms %d: %s, want %s", ms, got, want)
		}
	}
	for _, ms := range []int64{-1, 1 << 62} {
		t.Run(fmt.Sprint(ms), func(t *testing.T) {
			f := newFixture(t, 1)
			ep := newEndpoint(t, "")
			def := WithDefaults(&wailv1.Sink{Table: testTable, Name: "s", Url: ep.url(), Start: "beginning", MaxRetryMs: 300, BackoffMinMs: 10, BackoffMaxMs: 20})
			def.TimeoutMs = ms
			b, err := proto.Marshal(&wailv1.SinkList{Sinks: []*wailv1.Sink{def}})
			if err != nil {
				t.Fatal(err)
			}
			f.cat.m[CatalogEntry] = b
			for v := range uint64(3) {
				f.publish(event("k", v+1))
			}
			m := f.manager()
			defer m.Close()
			waitFor(t, "3 events delivered or dead-lettered", 10*time.Second, func() bool {
				evs, _ := f.deadLetters(m, "s")
				return len(ep.events())+len(evs) >= 3
			})
			if evs, ls := f.deadLetters(m, "s"); len(evs) != 0 {
				t.Fatalf("%d events dead-lettered: %s", len(evs), ls[0].Error)
			}
		})
	}
}

// TestSinkCloseWhileStuck: Close ends a sink whose request an endpoint
// holds (never answering, within a 10-minute timeout), and one waiting out
// a long backoff, at once.
func TestSinkCloseWhileStuck(t *testing.T) {
	f := newFixture(t, 2)
	held, release := make(chan struct{}), make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case held <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer stuck.Close()
	defer close(release)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	m := f.manager()
	ctx := context.Background()
	for name, u := range map[string]string{"stuck": stuck.URL, "backoff": failing.URL} {
		if _, _, err := m.Create(ctx, &wailv1.Sink{Table: testTable, Name: name, Url: u, Start: "beginning", TimeoutMs: 600_000,
			BackoffMaxMs: 3_600_000, MaxRetryMs: 7 * 24 * 3_600_000}); err != nil {
			t.Fatal(err)
		}
	}
	f.publish(event("a", 1), event("b", 1))
	<-held
	waitFor(t, "a retry of the failing sink", 10*time.Second, func() bool {
		st, err := m.Describe(ctx, testTable, "backoff")
		return err == nil && st.Retries > 0
	})
	done := make(chan struct{})
	go func() { m.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close still waits 5s later")
	}
}

// TestSelfSignedEndpoint: an https endpoint whose certificate no known CA
// signed is refused (never posted to), and the error says what to set.
func TestSelfSignedEndpoint(t *testing.T) {
	var posted atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { posted.Add(1) }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	defer srv.Close()
	def := WithDefaults(&wailv1.Sink{Table: testTable, Name: "h", Url: srv.URL + "/hook"})
	a := post(context.Background(), NewHTTPClient(nil), def, "d", 1, []byte("{}"), "application/json", time.Now())
	if a.err == nil || judge(a.status) != retry || posted.Load() != 0 {
		t.Fatalf("attempt %+v, %d requests: want a failure, none posted", a, posted.Load())
	}
	if msg := a.err.Error(); !strings.Contains(msg, "unknown authority") || !strings.Contains(msg, "sinks.tls") {
		t.Errorf("error %q: want the cause and sinks.tls", msg)
	}
	// configured: the CA is trusted
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	a = post(context.Background(), NewHTTPClient(&tls.Config{RootCAs: pool}), def, "d", 1, []byte("{}"), "application/json", time.Now())
	if a.err != nil || posted.Load() != 1 {
		t.Fatalf("with its CA: %+v", a)
	}
}

// TestRedirectLoopSaid: a 307 to the same host is followed, but not more
// than maxRedirects times: the error says so, not that only same-host
// redirects are followed.
func TestRedirectLoopSaid(t *testing.T) {
	var n atomic.Int64
	a := hostilePost(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		n.Add(1)
		http.Redirect(w, r, "/again", http.StatusTemporaryRedirect)
	})
	if a.status != http.StatusTemporaryRedirect || n.Load() != maxRedirects+1 {
		t.Fatalf("attempt %+v after %d requests, want a 307 after %d", a, n.Load(), maxRedirects+1)
	}
	if msg := a.err.Error(); !strings.Contains(msg, "more than 3 redirects") {
		t.Errorf("error %q: want it to say the redirects were too many", msg)
	}
}

// TestRedirectToAnotherSchemeNotFollowed: a 307 to the same host and port
// under another scheme (https here; from an https endpoint, http would
// send the signed body in the clear) is not followed: only the scheme and
// host of the sink's URL are, and the error says so.
func TestRedirectToAnotherSchemeNotFollowed(t *testing.T) {
	var n atomic.Int64
	a := hostilePost(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		n.Add(1)
		http.Redirect(w, r, "https://"+r.Host+"/moved", http.StatusTemporaryRedirect)
	})
	if a.status != http.StatusTemporaryRedirect || n.Load() != 1 {
		t.Fatalf("attempt %+v after %d requests, want the 307 answered as it is after 1", a, n.Load())
	}
	if msg := a.err.Error(); !strings.Contains(msg, "not followed") {
		t.Errorf("error %q: want it to say the redirect was not followed", msg)
	}
}
