// Package sink runs webhook sinks: each POSTs a table's events, in
// batches, to an HTTP endpoint, in per-key order, retrying with
// exponential backoff on 5xx answers (and 408, 429, 401, 403, 404, an
// unfollowed redirect), timeouts and connection errors, bounded by
// attempts and time, then setting the batch aside in the sink's
// dead-letter topic and moving on. A batch the endpoint refuses (400,
// 413, 415, 422) is set aside at once, a 413 of several events split
// first (retry.go).
//
// A sink is a consumer group member underneath (group "sink.<name>" of
// its table, package group): the endpoint's acknowledgement of a batch
// (a 2xx answer) is committed as the group's position, durably, so a sink
// survives restarts without loss; what it may deliver twice is what the
// endpoint received but whose commit did not happen (DESIGN.md, "Webhook
// sinks").
//
// Definitions live in one entry of the store's catalog ("_sinks",
// defs.go), changed by compare-and-set, so every process sharing the
// store sees the same sinks; a process with sinks.enabled runs them
// (manager.go). Delivery: the request, its signature and how an answer
// is judged (deliver.go, a pure core in retry.go); the loop of one sink
// (runner.go).
package sink

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/group"
)

// Sentinel errors callers branch on.
var (
	// ErrInvalid: the definition is not acceptable (the message says why).
	ErrInvalid = errors.New("invalid sink")
	// ErrNotFound: no sink of that table and name.
	ErrNotFound = errors.New("sink not found")
	// ErrConflict: a sink of that table and name exists with another
	// definition.
	ErrConflict = errors.New("sink exists with a different definition")
)

// Defaults of a definition's optional fields.
const (
	DefaultMaxBatch   = 100
	MaxMaxBatch       = 10_000
	DefaultTimeout    = 10 * time.Second
	DefaultMaxRetry   = 15 * time.Minute
	DefaultBackoffMin = 200 * time.Millisecond
	DefaultBackoffMax = 30 * time.Second
	// DefaultPartitionsInFlight and MaxPartitionsInFlight bound how many
	// partitions' requests are in flight at once.
	DefaultPartitionsInFlight = 4
	MaxPartitionsInFlight     = 256
)

// StartSnapshot starts a sink with every key's current state.
const StartSnapshot = "snapshot"

// Formats of a request's body.
const (
	FormatJSON     = "json"
	FormatProtobuf = "protobuf"
)

var sinkName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// GroupName is the consumer group a sink consumes as.
func GroupName(name string) string { return eventbus.SinkGroupPrefix + name }

// urlHider returns what replaces, in a text, a sink's URL raw (as given,
// or as net/http quotes it in its errors) and its path and query by
// scheme://host/…, and drops credentials in it: they often hold a token
// (a Slack-style webhook URL is one whole), and some texts (/healthz) are
// open to anyone.
func urlHider(raw string) func(string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return strings.NewReplacer(raw, "(the sink's URL)").Replace
	}
	rest := u.RequestURI()
	if rest == "/" && u.User == nil {
		return func(s string) string { return s } // nothing to hide
	}
	shown := u.Scheme + "://" + u.Host + "/…"
	if rest == "/" {
		shown = u.Scheme + "://" + u.Host + "/"
	}
	// Longest first: a whole URL before its path and query, before its
	// path alone (an endpoint's answer may quote the path, with or
	// without the query, escaped or not).
	pairs := []string{raw, shown, u.String(), shown}
	if u.User != nil {
		// Credentials, which a create refuses but a definition read from
		// the store may hold (an older version's, a hand edit): net/http
		// quotes the URL with the password as ***, url.Redacted as xxxxx.
		name := u.User.Username()
		pairs = append(pairs, u.Redacted(), shown)
		for _, info := range []string{u.User.String(), name + ":***", name + ":xxxxx", name} {
			pairs = append(pairs, info+"@", "")
		}
	}
	if rest != "/" {
		pairs = append(pairs, rest, "/…")
	}
	for _, path := range []string{u.EscapedPath(), u.Path} {
		if len(path) > 1 && path != rest {
			pairs = append(pairs, path, "/…")
		}
	}
	return strings.NewReplacer(pairs...).Replace
}

// HideURL hides, in a sink's status, its URL's path and query (in the
// definition and the last error) by scheme://host/…, as /healthz shows
// them: for callers who may list and describe sinks (consume) but not
// create them (admin), since the URL often is a credential.
func HideURL(st *wailv1.SinkStatus) {
	if st.GetSink() == nil {
		return
	}
	hide := urlHider(st.Sink.Url)
	st.LastError = hide(st.LastError)
	st.Sink.Url = hide(st.Sink.Url)
}

// DeadLetterTopic is where a sink sets aside the batches it gave up on.
func DeadLetterTopic(table, name string) string { return "wail.sink." + table + "." + name + ".dlq" }

// WithDefaults fills a definition's unset fields.
func WithDefaults(s *wailv1.Sink) *wailv1.Sink {
	d := cloneSink(s)
	if d.Format == "" {
		d.Format = FormatJSON
	}
	if d.Start == "" {
		d.Start = "latest"
	}
	if d.MaxBatchEvents == 0 {
		d.MaxBatchEvents = DefaultMaxBatch
	}
	if d.TimeoutMs == 0 {
		d.TimeoutMs = DefaultTimeout.Milliseconds()
	}
	if d.MaxRetryMs == 0 {
		d.MaxRetryMs = DefaultMaxRetry.Milliseconds()
	}
	if d.BackoffMinMs == 0 {
		d.BackoffMinMs = DefaultBackoffMin.Milliseconds()
	}
	if d.BackoffMaxMs == 0 {
		d.BackoffMaxMs = DefaultBackoffMax.Milliseconds()
	}
	if d.PartitionsInFlight == 0 {
		d.PartitionsInFlight = DefaultPartitionsInFlight
	}
	d.HasSecret = d.Secret != ""
	return d
}

// Validate checks a definition (after WithDefaults).
func Validate(s *wailv1.Sink) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	if !sinkName.MatchString(s.Name) {
		return bad("name %q: use 1-63 lower-case letters, digits or '_', starting with a letter", s.Name)
	}
	if err := group.ValidateName("group", GroupName(s.Name)); err != nil {
		return bad("%v", err)
	}
	u, err := url.Parse(s.Url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("url %q: give an absolute http:// or https:// URL", s.Url)
	}
	if u.Hostname() == "" {
		return bad("url %q: no host name (%q would post to this host)", s.Url, u.Host)
	}
	if err := checkHost(u.Hostname()); err != nil {
		return bad("url %q: %v", s.Url, err)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("url %q: port %s: use 1..65535", s.Url, p)
		}
	}
	if u.User != nil {
		return bad("url %q: credentials in the URL would be shown by describe; use --secret (signature) or put a token in the path", s.Url)
	}
	if s.Format != FormatJSON && s.Format != FormatProtobuf {
		return bad("format %q: use json or protobuf", s.Format)
	}
	if s.Start != "beginning" && s.Start != "latest" && s.Start != StartSnapshot {
		return bad("start %q: use latest, beginning or snapshot", s.Start)
	}
	if s.MaxBatchEvents < 1 || s.MaxBatchEvents > MaxMaxBatch {
		return bad("max_batch_events %d: use 1..%d", s.MaxBatchEvents, MaxMaxBatch)
	}
	if s.TimeoutMs < 1 || s.TimeoutMs > maxTimeout.Milliseconds() {
		return bad("timeout_ms %d: use 1..600000", s.TimeoutMs)
	}
	if s.MaxAttempts < 0 {
		return bad("max_attempts %d: use 0 (bounded by max_retry_ms only) or more", s.MaxAttempts)
	}
	if s.MaxRetryMs < 1 || s.MaxRetryMs > (7*24*time.Hour).Milliseconds() {
		return bad("max_retry_ms %d: use 1ms..7 days", s.MaxRetryMs)
	}
	if s.BackoffMinMs < 1 || s.BackoffMaxMs < s.BackoffMinMs || s.BackoffMaxMs > maxBackoffMs {
		return bad("backoff %d..%d ms: min must be positive, max at least min and at most 7 days (%d ms)", s.BackoffMinMs, s.BackoffMaxMs, maxBackoffMs)
	}
	if s.PartitionsInFlight < 1 || s.PartitionsInFlight > MaxPartitionsInFlight {
		return bad("partitions_in_flight %d: use 1..%d", s.PartitionsInFlight, MaxPartitionsInFlight)
	}
	if len(s.Secret) > 1024 {
		return bad("secret of %d bytes: at most 1024", len(s.Secret))
	}
	return nil
}

// maxBackoffMs bounds backoff_max_ms (and so backoff_min_ms): 7 days, as
// max_retry_ms. Far larger values overflowed a time.Duration into a
// negative wait: retries without any backoff, and never given up.
var maxBackoffMs = (7 * 24 * time.Hour).Milliseconds()

// Public returns a definition as responses show it: without its secret.
func Public(s *wailv1.Sink) *wailv1.Sink {
	p := cloneSink(s)
	p.HasSecret = s.Secret != ""
	p.Secret = ""
	p.TableCreatedAtUs = 0
	return p
}

func cloneSink(s *wailv1.Sink) *wailv1.Sink {
	if s == nil {
		return &wailv1.Sink{}
	}
	return proto.Clone(s).(*wailv1.Sink)
}

// sameDefinition compares what a create sets (not paused, nor the
// table's incarnation, which the server sets).
func sameDefinition(a, b *wailv1.Sink) bool {
	x, y := cloneSink(a), cloneSink(b)
	x.Paused, y.Paused = false, false
	x.TableCreatedAtUs, y.TableCreatedAtUs = 0, 0
	return proto.Equal(x, y)
}
