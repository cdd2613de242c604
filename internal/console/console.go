// Package console is wail's web console, served by `wail serve` under
// /console/: static pages embedded in the binary (plain HTML and
// JavaScript, no build step) and the little they cannot get from the API.
//
//   - /console/api/whoami: whether auth is on, the caller's principal and
//     what the pages may show (the console's login asks for a token when
//     auth is on, keeps it in the tab's sessionStorage and sends it as a
//     bearer header; no cookie).
//   - /console/api/series: the live charts' points per table, sampled
//     from the process's own Prometheus registry every Interval and kept
//     for Keep samples (write and event rates, write-to-event p50/p99,
//     lag in intents and seconds and the oldest unresolved intent), with
//     the counters as /metrics shows them; per partition (the newest
//     sample only) the lags and the writes, counted in the proxy rather
//     than as a Prometheus label (see proxy.PartitionWrites).
//   - /console/api/tail?table=T&key=K: a live tail of a table's events
//     from now on (server-sent events), only keys containing K; its
//     credential is checked again as it sends, and every second while it
//     sends nothing (Options.Recheck). Offsets retention removed before
//     the tail read them it passes with a "gap" event (TailGap).
//   - /console/api/history?table=T&key=K: the events of key K still on
//     the bus, among the last HistoryScan records of its partition (the
//     newest MaxHistoryEvents of them, and how many older ones); at most
//     MaxHistories read at once.
//
// Tables, a key's current row and the dead-letter queue (with redrive)
// the pages read from the API itself (Connect JSON: AdminService,
// ProducerService).
package console

import (
	"context"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
)

//go:embed static
var static embed.FS

// Options configure a Console.
type Options struct {
	// Gatherer is the process's registry (what /metrics serves).
	Gatherer prometheus.Gatherer
	// Table returns a table's definition (false: no such table).
	Table func(name string) (catalog.Table, bool)
	// PartitionWrites returns a table's acknowledged writes by partition
	// (proxy.PartitionWrites; nil: not shown).
	PartitionWrites func(table string) []uint64
	// Caller says whether auth is on, and the principal of a request and
	// its grants (nil: auth is off).
	Caller func(r *http.Request) (authOn bool, p auth.Principal, grants []auth.Grant)
	// Recheck, when set, returns what checks the credential of a tail's
	// request again; the tail calls it before each event it sends and
	// ends, with an error event, when it fails (a token revoked since).
	Recheck func(r *http.Request) func() error
	// Log holds the event topics the tail reads.
	Log    intentlog.Log
	Logger *slog.Logger
	// Interval between samples of the registry (0: 1s); Keep samples are
	// kept (0: 300, five minutes at 1s).
	Interval time.Duration
	Keep     int
	// RetentionGaps counts the retention gaps tails meet, as Subscribe
	// streams' (group ""; nil: none).
	RetentionGaps *group.RetentionGaps
	// MaxTails bounds the tails open at once (0: 8).
	MaxTails int
	// MaxHistories bounds the key histories read at once (0: 4).
	MaxHistories int
	// HistoryScan bounds the records of a partition a key's history reads
	// back from its end (0: 100000).
	HistoryScan int64
	// AllowedOrigins are the origins (scheme://host[:port]) of other
	// sites whose pages may call the console's API (crossOrigin).
	AllowedOrigins []string
}

// Console serves the console.
type Console struct {
	o      Options
	series *series
	tails  atomic.Int32
	// histories are the key histories being read (MaxHistories).
	histories atomic.Int32
	origins   map[string]bool // AllowedOrigins, as browsers send them
}

// New returns a console; Run samples the registry.
func New(o Options) *Console {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Keep <= 0 {
		o.Keep = 300
	}
	if o.MaxTails <= 0 {
		o.MaxTails = 8
	}
	if o.MaxHistories <= 0 {
		o.MaxHistories = 4
	}
	if o.HistoryScan <= 0 {
		o.HistoryScan = 100000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{o: o, series: newSeries(o.Keep), origins: map[string]bool{}}
	for _, origin := range o.AllowedOrigins {
		c.origins[SerializeOrigin(origin)] = true
	}
	return c
}

// Run samples the registry every Interval until ctx ends.
func (c *Console) Run(ctx context.Context) {
	t := time.NewTicker(c.o.Interval)
	defer t.Stop()
	for {
		if err := c.series.sample(c.o.Gatherer, c.o.PartitionWrites, time.Now()); err != nil {
			c.o.Logger.Warn("console: cannot read the metrics registry; the live charts stop", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Handler serves /console/ (mount it at "/console/").
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	sub, _ := fs.Sub(static, "static") // the directory is embedded
	mux.Handle("GET /console/", pageHeaders(http.StripPrefix("/console/", http.FileServerFS(sub))))
	api := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, c.sameOrigin(h)) }
	api("GET /console/api/{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"endpoints":["whoami","series","tail","history"]}`)
	})
	api("GET /console/api/whoami", c.serveWhoami)
	api("GET /console/api/series", c.serveSeries)
	api("GET /console/api/tail", c.serveTail)
	api("GET /console/api/history", c.serveHistory)
	return mux
}

// sameOrigin refuses (403) the API's requests that a browser sends for a
// page of another origin (crossOrigin): with auth off, or credentials a
// browser sends by itself (a client certificate), any site's page could
// otherwise open tails, each holding a slot of console.max_tails and
// reading every partition of its table, or scan keys' histories.
func (c *Console) sameOrigin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if why := c.crossOrigin(r); why != "" {
			http.Error(w, "cross-origin request refused: "+why+"; the console's API answers the console's own pages. "+
				"To let the pages of another site call it, add that site's origin (scheme://host[:port]) to console.allowed_origins", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// crossOrigin says why r comes from a browser showing a page of another
// origin than the console's and not in AllowedOrigins ("": it does not).
// Browsers send Sec-Fetch-Site on every request (a page cannot set it):
// same-origin and none (typed in, a bookmark) pass, cross-site and
// same-site (another origin of the same site) do not, even without an
// Origin header (a no-cors fetch, an <img>). Older browsers send only
// Origin, on cross-origin requests: it must be this host. Clients that
// are not browsers send neither and pass.
func (c *Console) crossOrigin(r *http.Request) string {
	origin := r.Header.Get("Origin")
	if origin != "" && c.origins[SerializeOrigin(origin)] {
		return ""
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "same-origin", "none":
		return ""
	case "":
	default:
		if origin == "" {
			return "a browser sent it for a page of another site (Sec-Fetch-Site: " + site + ")"
		}
		return fmt.Sprintf("a browser sent it for a page of %q (Sec-Fetch-Site: %s)", origin, site)
	}
	if origin == "" {
		return ""
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
		return ""
	}
	return fmt.Sprintf("a browser sent it for a page of %q, not of %s", origin, r.Host)
}

// SerializeOrigin is an origin (scheme://host[:port]) as browsers send it
// in Origin: in lower case, without the scheme's default port.
func SerializeOrigin(origin string) string {
	o := strings.ToLower(strings.TrimSuffix(origin, "/"))
	switch {
	case strings.HasPrefix(o, "https://"):
		o = strings.TrimSuffix(o, ":443")
	case strings.HasPrefix(o, "http://"):
		o = strings.TrimSuffix(o, ":80")
	}
	return o
}

// pageHeaders: the pages run only their own scripts and talk only to
// their origin, and no other site may frame them (a redrive button under
// a decoy).
func pageHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// Whoami is who the console's user is and what the pages may show.
type Whoami struct {
	// Auth is on: the console needs a token.
	Auth      bool     `json:"auth"`
	Principal string   `json:"principal"`
	Grants    []string `json:"grants"`
	// Metrics: the live charts; Admin (on every table): the tail, a key's
	// history, the dead letters and redrive; Tables: some table's
	// definition (any grant on it).
	Metrics bool `json:"metrics"`
	Admin   bool `json:"admin"`
	Tables  bool `json:"tables"`
}

func (c *Console) serveWhoami(w http.ResponseWriter, r *http.Request) {
	who := Whoami{Principal: "anonymous", Grants: []string{}, Metrics: true, Admin: true, Tables: true}
	if c.o.Caller != nil {
		on, p, grants := c.o.Caller(r)
		if on {
			who = Whoami{Auth: true, Principal: p.String(), Grants: []string{},
				Metrics: auth.Allowed(grants, auth.Metrics, nil), Admin: auth.Allowed(grants, auth.Admin, nil),
				Tables: auth.Allowed(grants, auth.Any, nil)}
			for _, g := range grants {
				who.Grants = append(who.Grants, g.String())
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(who)
}

func (c *Console) serveSeries(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(struct {
		Interval float64            `json:"interval_seconds"`
		Tables   map[string][]Point `json:"tables"`
	}{c.o.Interval.Seconds(), c.series.snapshot()})
}

// TailEvent is an event as the tail shows it.
type TailEvent struct {
	Partition  int32     `json:"partition"`
	Offset     int64     `json:"offset"`
	Key        string    `json:"key"`
	Op         string    `json:"op"`
	Version    uint64    `json:"version,string"` // above 2^53: a string, or JavaScript rounds it
	Value      string    `json:"value"`
	Truncated  bool      `json:"truncated,omitempty"`
	IntentAt   time.Time `json:"intent_at"`
	ResolvedAt time.Time `json:"resolved_at"`
	Covered    uint32    `json:"covered_intents"`
	Trace      string    `json:"traceparent,omitempty"`
}

// TailGap, in a tail, says that retention (log.event_retention) removed
// offsets [From, To) of a partition before the tail read them: their
// events are not shown (sent as the server-sent event "gap").
type TailGap struct {
	Partition int32 `json:"partition"`
	From      int64 `json:"from"`
	To        int64 `json:"to"`
}

// tailMsg is what a partition's follower hands the tail: an event or a gap.
type tailMsg struct {
	event *TailEvent
	gap   *TailGap
}

// History is what the bus holds of a key.
type History struct {
	Partition int32 `json:"partition"`
	// From and End are the offsets read: [From, End) of the partition;
	// Complete when From is the partition's start (nothing older is kept).
	From     int64 `json:"from"`
	End      int64 `json:"end"`
	Complete bool  `json:"complete"`
	// Events are the newest MaxHistoryEvents of the key read, oldest
	// first; Omitted counts the older ones read but not sent.
	Events  []TailEvent `json:"events"`
	Omitted int         `json:"omitted"`
}

// MaxHistoryEvents bounds the events of a key's history: the newest are
// sent (a hot key may have every record of the scan).
const MaxHistoryEvents = 200

// historyTimeout bounds the scan of a key's history.
const historyTimeout = 10 * time.Second

// request reads a request's table and key parameters; false: it
// answered 404 (no such table).
func (c *Console) request(w http.ResponseWriter, r *http.Request) (t catalog.Table, key string, ok bool) {
	table := r.URL.Query().Get("table")
	if t, ok = c.o.Table(table); !ok {
		http.Error(w, fmt.Sprintf("no table %q", table), http.StatusNotFound)
	}
	return t, r.URL.Query().Get("key"), ok
}

func (c *Console) serveHistory(w http.ResponseWriter, r *http.Request) {
	t, key, ok := c.request(w, r)
	if !ok {
		return
	}
	if key == "" {
		http.Error(w, "key is empty", http.StatusBadRequest)
		return
	}
	if n := c.histories.Add(1); n > int32(c.o.MaxHistories) {
		c.histories.Add(-1)
		w.Header().Set("Retry-After", "1")
		http.Error(w, fmt.Sprintf("%d key histories are being read, the most the console reads at once (console.max_histories); retry in a moment",
			c.o.MaxHistories), http.StatusTooManyRequests)
		return
	}
	defer c.histories.Add(-1)
	ctx, cancel := context.WithTimeout(r.Context(), historyTimeout)
	defer cancel()
	h, err := c.history(ctx, t.Name, t.Partitions, []byte(key))
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(h)
}

// history reads the last HistoryScan records of key's partition for its
// events, oldest first.
func (c *Console) history(ctx context.Context, table string, partitions int32, key []byte) (History, error) {
	topic := eventbus.Topic(table)
	h := History{Partition: intentlog.Partition(key, partitions), Events: []TailEvent{}}
	start, end, err := c.o.Log.Bounds(ctx, topic, h.Partition)
	if err != nil {
		return h, fmt.Errorf("history of %s/%d: %w", topic, h.Partition, err)
	}
	h.From, h.End = max(start, end-c.o.HistoryScan), end
	h.Complete = h.From == start
	rd, err := c.o.Log.NewReader(topic, h.Partition, h.From)
	if err != nil {
		return h, fmt.Errorf("history of %s/%d: %w", topic, h.Partition, err)
	}
	defer rd.Close()
	found := 0
	for rd.Position() < end {
		recs, err := rd.Next(ctx)
		if err != nil {
			return h, fmt.Errorf("history of %s/%d (read up to %d of %d): %w", topic, h.Partition, rd.Position(), end, err)
		}
		for i := range recs {
			if recs[i].Offset >= end {
				continue
			}
			if e, ok, err := eventbus.Decode(&recs[i]); ok && err == nil && string(e.Key) == string(key) {
				found++
				if len(h.Events) == 2*MaxHistoryEvents { // keep the newest, in at most twice their room
					h.Events = append(h.Events[:0], h.Events[MaxHistoryEvents:]...)
				}
				h.Events = append(h.Events, tailEvent(h.Partition, recs[i].Offset, &e))
			}
		}
	}
	if n := len(h.Events); n > MaxHistoryEvents {
		h.Events = h.Events[n-MaxHistoryEvents:]
	}
	h.Omitted = found - len(h.Events)
	return h, nil
}

// maxTailValue bounds the bytes of a value the tail shows.
const maxTailValue = 512

// tailIdleCheck is how often a tail that sends nothing has its credential
// checked (Options.Recheck asks at most every security.reload_interval).
const tailIdleCheck = time.Second

func (c *Console) serveTail(w http.ResponseWriter, r *http.Request) {
	t, filter, ok := c.request(w, r)
	if !ok {
		return
	}
	table := t.Name
	if n := c.tails.Add(1); n > int32(c.o.MaxTails) {
		c.tails.Add(-1)
		http.Error(w, fmt.Sprintf("%d tails are open, the most the console serves at once; close one", c.o.MaxTails), http.StatusTooManyRequests)
		return
	}
	defer c.tails.Add(-1)
	rc := http.NewResponseController(w) // reaches a Flusher through wrappers (Unwrap)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	out := make(chan tailMsg, 64)
	errc := make(chan error, t.Partitions)
	topic := eventbus.Topic(table)
	// Every partition's end is read before the answer starts: a client that
	// writes once it has the answer's headers sees the event of its write
	// (read after, the end could already be past it).
	readers := make([]intentlog.Reader, 0, t.Partitions)
	for p := int32(0); p < t.Partitions; p++ {
		rd, err := c.fromEnd(ctx, topic, p)
		if err != nil {
			for _, rd := range readers {
				rd.Close()
			}
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		readers = append(readers, rd)
	}
	for p, rd := range readers {
		go func() { errc <- c.follow(ctx, rd, table, int32(p), filter, out) }()
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": tail of "+table+"\n\n")
	if err := rc.Flush(); err != nil {
		return // the connection cannot stream (or is gone)
	}
	enc := json.NewEncoder(w)
	check := func() error { return nil }
	if c.o.Recheck != nil {
		check = c.o.Recheck(r)
	}
	// Checked while it sends nothing too: a tail of a quiet table would
	// stream on, its credential revoked, for as long as its connection
	// lived (check itself asks at most every security.reload_interval).
	idle := time.NewTicker(tailIdleCheck)
	defer idle.Stop()
	fail := func(err error) { // an error event ends the tail
		// A JSON string, which the page parses (Go's %q is not JSON: \x7f,
		// \a, \U000e0001); one line, as HTML- and line-escaped as events.
		msg, _ := json.Marshal(err.Error())
		fmt.Fprintf(w, "event: error\ndata: %s\n\n", msg)
		_ = rc.Flush()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-idle.C:
			if err := check(); err != nil {
				fail(err)
				return
			}
		case err := <-errc:
			if err != nil && ctx.Err() == nil {
				fail(err)
				return
			}
		case m := <-out:
			if err := check(); err != nil {
				fail(err)
				return
			}
			var v any = m.event
			if m.gap != nil {
				fmt.Fprint(w, "event: gap\n")
				v = m.gap
			}
			fmt.Fprint(w, "data: ")
			if err := enc.Encode(v); err != nil {
				return
			}
			fmt.Fprint(w, "\n")
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// fromEnd opens a reader of a partition at its end.
func (c *Console) fromEnd(ctx context.Context, topic string, p int32) (intentlog.Reader, error) {
	_, end, err := c.o.Log.Bounds(ctx, topic, p)
	if err != nil {
		return nil, fmt.Errorf("tail %s/%d: %w", topic, p, err)
	}
	rd, err := c.o.Log.NewReader(topic, p, end)
	if err != nil {
		return nil, fmt.Errorf("tail %s/%d: %w", topic, p, err)
	}
	return rd, nil
}

// follow sends the events rd reads of partition p on whose key contains
// filter. Past offsets retention removed before it read them, it sends
// the gap (every key's events in it are lost to the tail) and reads on
// from the log's start, as a Subscribe stream does.
func (c *Console) follow(ctx context.Context, rd intentlog.Reader, table string, p int32, filter string, out chan<- tailMsg) error {
	topic := eventbus.Topic(table)
	defer func() {
		if rd != nil {
			rd.Close()
		}
	}()
	pos := rd.Position()
	tries := 0 // answers out of range in a row within the log's bounds
	for {
		var recs []intentlog.Record
		var err error
		if rd == nil {
			rd, err = c.o.Log.NewReader(topic, p, pos)
			if err != nil {
				rd = nil
			}
		}
		if rd != nil {
			recs, err = rd.Next(ctx)
		}
		if errors.Is(err, intentlog.ErrOffsetOutOfRange) && ctx.Err() == nil {
			if rd != nil {
				pos = rd.Position()
				rd.Close()
				rd = nil
			}
			tries++
			gap, next, err := c.outOfRange(ctx, table, p, pos, err, tries)
			if err != nil {
				return err
			}
			if gap != nil {
				tries = 0
				select {
				case out <- tailMsg{gap: gap}:
				case <-ctx.Done():
					return nil
				}
			}
			pos = next
			continue
		}
		if err != nil {
			return fmt.Errorf("tail %s/%d: %w", topic, p, err)
		}
		tries = 0
		for i := range recs {
			e, ok, err := eventbus.Decode(&recs[i])
			if !ok || err != nil {
				continue // a delete's tombstone, or not an event
			}
			if !strings.Contains(printableKey(e.Key), filter) {
				continue
			}
			te := tailEvent(p, recs[i].Offset, &e)
			select {
			case out <- tailMsg{event: &te}:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// outOfRange returns where a tail's reader of partition p goes on after
// the log answered its position pos out of range (cause; the tries-th
// time in a row): below the log's start, retention removed those events
// before the tail read them: from the start, with the gap to show; within
// the bounds, the same position after a pause; past the end (the log lost
// its tail) or out of tries, the tail ends (intentlog.PlaceOutOfRange).
func (c *Console) outOfRange(ctx context.Context, table string, p int32, pos int64, cause error, tries int) (*TailGap, int64, error) {
	topic := eventbus.Topic(table)
	o, err := intentlog.PlaceOutOfRange(ctx, c.o.Log, topic, p, pos, cause, tries)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, pos, nil // the tail is gone: its reader ends next
	case err != nil:
		return nil, 0, err
	case o.Placement == intentlog.BelowStart:
		c.o.RetentionGaps.Add(table, "", pos, o.Start)
		return &TailGap{Partition: p, From: pos, To: o.Start}, o.Start, nil
	case o.Placement == intentlog.PastEnd:
		return nil, 0, fmt.Errorf("tail %s/%d at %d, past the log's end %d (the log lost its tail): %w", topic, p, pos, o.End, cause)
	}
	return nil, pos, nil
}

func tailEvent(p int32, offset int64, e *intent.Event) TailEvent {
	te := TailEvent{Partition: p, Offset: offset, Key: printableKey(e.Key), Op: e.Op.String(), Version: e.Version,
		IntentAt: e.IntentAt, ResolvedAt: e.ResolvedAt, Covered: e.CoveredIntents, Trace: e.Trace}
	v := e.Value
	if len(v) > maxTailValue {
		n := maxTailValue
		for i := n; i > n-utf8.UTFMax; i-- { // not inside a character: cut in two, text shows as hex
			if utf8.RuneStart(v[i]) {
				n = i
				break
			}
		}
		v, te.Truncated = v[:n], true
	}
	te.Value = printable(v)
	return te
}

// printable shows bytes as text when they are valid UTF-8 without
// control characters (but tabs), else as 0x-hex; text that starts with
// "0x" (or "0X") too, or it would pass for other bytes shown as 0x-hex
// (the text "0x6bff" for the bytes 6b ff: a binary key, a big-endian id).
func printable(b []byte) string {
	if utf8.Valid(b) && !strings.ContainsFunc(string(b), func(r rune) bool { return unicode.IsControl(r) && r != '\t' }) &&
		!(len(b) >= 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X')) {
		return string(b)
	}
	return "0x" + hex.EncodeToString(b)
}

// printableKey is printable, and 0x-hex for a key with a format
// character too (a bidi override, a zero-width space, a byte order mark):
// its text would pass for another key's.
func printableKey(b []byte) string {
	if s := printable(b); !strings.ContainsFunc(s, func(r rune) bool { return unicode.Is(unicode.Cf, r) }) {
		return s
	}
	return "0x" + hex.EncodeToString(b)
}
