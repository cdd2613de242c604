package server

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/schemaregistry"
)

// Request budgets (docs/operations.md, "Limits and budgets"): what one
// request may make the server hold, and for how long.
//
//   - Size: each procedure has a cap on its request, decoded and
//     decompressed (requestBytes). connect enforces it on the message; a
//     gzip body is inflated through cappedGzip, which stops at the cap
//     instead of inflating the rest to measure it (connect's own gzip
//     inflates a 1 MB bomb to 1 GB to report its size). The raw body is
//     capped too (http.MaxBytesReader), and a Content-Length above it is
//     refused before reading.
//   - Time: the body must arrive within api.read_timeout of the headers;
//     once it has, the read deadline is lifted, so neither a long handler
//     nor an event stream is cut. Each write of a response must be taken
//     by the client within api.write_timeout (timedWriter), so a client
//     that stops reading loses its stream instead of holding the server.

// requestBytes is the cap of one request of procedure, decoded.
func requestBytes(cfg *config.Config, procedure string) int64 {
	switch procedure {
	case wailv1connect.ProducerServicePutProcedure, wailv1connect.ProducerServiceDeleteProcedure, wailv1connect.ProducerServiceGetProcedure:
		return cfg.UnaryRequestBytes()
	case wailv1connect.ProducerServiceWriteProcedure, wailv1connect.ProducerServiceWriteStreamProcedure:
		return cfg.WriteRequestBytes() // WriteStream: each message
	}
	return cfg.API.MaxAdminRequestBytes
}

// maxRequestMessages bounds the messages an AdminService or EventService
// request holds, counted before it is decoded (api.Services.MaxMessages):
// an Ack holds one per partition of a table, a table's schemas their
// references; 64 more for the rest.
func maxRequestMessages(cfg *config.Config) int {
	return max(int(cfg.Limits.MaxTablePartitions), 2*cfg.SchemaRegistry.MaxReferences) + 64
}

// capSetting names the settings behind a procedure's cap, for errors.
func capSetting(procedure string) string {
	switch procedure {
	case wailv1connect.ProducerServicePutProcedure, wailv1connect.ProducerServiceDeleteProcedure, wailv1connect.ProducerServiceGetProcedure:
		return "limits.max_key_bytes + limits.max_value_bytes"
	case wailv1connect.ProducerServiceWriteProcedure, wailv1connect.ProducerServiceWriteStreamProcedure:
		return "limits.max_batch_mutations mutations at those limits, at most api.max_write_request_bytes"
	}
	return "api.max_admin_request_bytes"
}

// rawBytes is the cap of a request's body as sent: connect applies the
// decoded cap to the compressed message too, so only the 5-byte envelope
// of gRPC and streams comes on top.
func rawBytes(decoded int64) int64 { return decoded + 5 }

// budgetOptions gives each procedure its size cap, for the message and for
// what a compressed message inflates to.
func budgetOptions(cfg *config.Config) connect.HandlerOption {
	return connect.WithConditionalHandlerOptions(func(spec connect.Spec) []connect.HandlerOption {
		n := requestBytes(cfg, spec.Procedure)
		setting := capSetting(spec.Procedure)
		return []connect.HandlerOption{
			connect.WithReadMaxBytes(int(n)),
			connect.WithCompression("gzip",
				func() connect.Decompressor { return &cappedGzip{limit: n, setting: setting} },
				func() connect.Compressor { return gzip.NewWriter(io.Discard) }),
		}
	})
}

// cappedGzip inflates at most limit+1 bytes; reading past them fails at
// once. connect reads limit+1 bytes to see that a message is too large and
// then drains the decompressor to tell its size: here that drain ends
// immediately.
type cappedGzip struct {
	zr      gzip.Reader
	limit   int64
	setting string
	n       int64
}

func (d *cappedGzip) Read(p []byte) (int, error) {
	if d.n > d.limit {
		return 0, fmt.Errorf("the request inflates past %d bytes, the cap of this method (%s); it was not inflated further", d.limit, d.setting)
	}
	if rest := d.limit + 1 - d.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := d.zr.Read(p)
	d.n += int64(n)
	return n, err
}

func (d *cappedGzip) Reset(r io.Reader) error {
	d.n = 0
	return d.zr.Reset(r)
}

func (d *cappedGzip) Close() error { return d.zr.Close() }

// guard applies the raw size cap and the read and write deadlines to every
// request.
type guard struct {
	next   http.Handler
	cfg    *config.Config
	budget *bodyBudget
	errs   *connect.ErrorWriter
}

func newGuard(cfg *config.Config, budget *bodyBudget, next http.Handler) *guard {
	return &guard{next: next, cfg: cfg, budget: budget, errs: connect.NewErrorWriter()}
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	procedure := r.URL.Path
	raw := rawBytes(requestBytes(g.cfg, procedure))
	if r.ContentLength > raw {
		g.tooLarge(w, r, fmt.Sprintf("the request body is %d bytes; %s takes at most %d (%s)", r.ContentLength, procedure, raw, capSetting(procedure)))
		return
	}
	rc := http.NewResponseController(w)
	hasBody := r.Body != nil && r.Body != http.NoBody
	if procedure == wailv1connect.ProducerServiceWriteStreamProcedure {
		// A write stream's body is its batches, for as long as it lives:
		// connect caps each message, api.max_write_streams the streams,
		// the budget the batches held (each until it is answered),
		// api.read_timeout each batch's arrival (batchDeadline).
		_ = rc.SetReadDeadline(time.Time{})
		if hasBody {
			body := &chargedBody{ReadCloser: r.Body, b: g.budget, rpc: true, freed: make(chan struct{}, 1),
				batch: batchDeadline{rc: rc, timeout: g.cfg.API.ReadTimeout}, maxBatch: raw}
			defer body.release()
			r.Body = body
			r = r.WithContext(api.WithBodyCharge(r.Context(), body))
		}
	} else if hasBody {
		_ = rc.SetReadDeadline(time.Now().Add(g.cfg.API.ReadTimeout))
		body := &chargedBody{ReadCloser: http.MaxBytesReader(w, r.Body, raw), b: g.budget, rpc: isRPC(procedure),
			untilEOF: procedure == wailv1connect.EventServiceSubscribeProcedure || procedure == wailv1connect.EventServiceConsumeProcedure}
		defer body.release()
		r.Body = &timedBody{ReadCloser: body, rc: rc, timeout: g.cfg.API.ReadTimeout,
			procedure: procedure, rpc: isRPC(procedure)}
	}
	tw := &timedWriter{ResponseWriter: w, rc: rc, timeout: g.cfg.API.WriteTimeout}
	defer tw.finish()
	g.next.ServeHTTP(tw, r)
}

// isRPC reports whether path is a procedure's (the rest, /metrics, the
// console, the schema registry, answer errors of their own kinds).
func isRPC(path string) bool { return strings.HasPrefix(path, "/wail.v1.") }

// tooLarge refuses a request whose Content-Length is past its cap, before
// reading it: resource_exhausted to an RPC; 413 to an HTTP endpoint, in
// the Confluent registry's error body on the registry, which its clients
// parse (resource_exhausted is HTTP 429, which they retry as a rate limit).
func (g *guard) tooLarge(w http.ResponseWriter, r *http.Request, msg string) {
	switch {
	case isRPC(r.URL.Path):
		_ = g.errs.Write(w, r, connect.NewError(connect.CodeResourceExhausted, errors.New(msg)))
	case strings.HasPrefix(r.URL.Path, config.SchemaRegistryPath+"/"):
		schemaregistry.WriteError(w, &schemaregistry.Error{Status: http.StatusRequestEntityTooLarge,
			Code: schemaregistry.CodeSchemaTooLarge, Message: msg})
	default:
		http.Error(w, msg, http.StatusRequestEntityTooLarge)
	}
}

// timedBody lifts the read deadline once the body has arrived, and turns a
// deadline or size overrun into an error that says which setting it hit:
// to an RPC a connect error; to an HTTP endpoint one that wraps the
// overrun, which it tells apart (the schema registry: 413, 408).
type timedBody struct {
	io.ReadCloser
	rc        *http.ResponseController
	timeout   time.Duration
	procedure string
	rpc       bool
	lifted    bool
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var tooLarge *http.MaxBytesError
	switch {
	case err == io.EOF && !b.lifted:
		b.lifted = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case err != nil && !b.rpc && errors.Is(err, os.ErrDeadlineExceeded):
		return n, fmt.Errorf("the request body did not arrive within %s (api.read_timeout): %w", b.timeout, err)
	case err != nil && !b.rpc:
	case errors.Is(err, os.ErrDeadlineExceeded):
		return n, connect.NewError(connect.CodeDeadlineExceeded,
			fmt.Errorf("the request body did not arrive within %s (api.read_timeout)", b.timeout))
	case errors.As(err, &tooLarge):
		return n, connect.NewError(connect.CodeResourceExhausted,
			fmt.Errorf("the request body passes %d bytes; that is the most %s takes (%s)", tooLarge.Limit, b.procedure, capSetting(b.procedure)))
	}
	return n, err
}

// timedWriter fails a response write (HTTP/1.1: the connection; HTTP/2:
// the stream) that the client has not taken within timeout. The deadline
// runs only while a write or flush is pending, so an idle event stream
// lives on.
type timedWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration

	mu      sync.Mutex
	timer   *time.Timer
	pending bool // a write or flush is under way
	done    bool // the handler returned: the ResponseController must not be used
}

func (t *timedWriter) arm() {
	t.mu.Lock()
	t.pending = true
	if t.timer == nil {
		t.timer = time.AfterFunc(t.timeout, t.expire)
	} else {
		t.timer.Reset(t.timeout)
	}
	t.mu.Unlock()
}

func (t *timedWriter) disarm() {
	t.mu.Lock()
	t.pending = false
	t.timer.Stop()
	t.mu.Unlock()
}

// expire fails the pending write now. A timer that fired as the write
// ended finds nothing pending (Stop does not wait for a running func).
func (t *timedWriter) expire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending && !t.done {
		_ = t.rc.SetWriteDeadline(time.Now())
	}
}

func (t *timedWriter) finish() {
	t.mu.Lock()
	t.done = true
	if t.timer != nil {
		t.timer.Stop()
	}
	t.mu.Unlock()
}

func (t *timedWriter) Write(p []byte) (int, error) {
	t.arm()
	defer t.disarm()
	return t.ResponseWriter.Write(p)
}

// Flush implements http.Flusher (connect's event streams need it).
func (t *timedWriter) Flush() {
	t.arm()
	defer t.disarm()
	_ = t.rc.Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (t *timedWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// writeStreamLimits are the write streams' limits.
func (s *Server) writeStreamLimits() api.StreamLimits {
	a := s.cfg.API
	return api.StreamLimits{InFlight: a.WriteStreamInFlight,
		MaxBatchBytes: requestBytes(&s.cfg, wailv1connect.ProducerServiceWriteStreamProcedure), // told to producers
		SlotLimits:    s.slotLimits("wail_api_write_streams", "WriteStream streams", "max_write_streams", a.MaxWriteStreams, a.MaxWriteStreamsPerClient)}
}

// streamLimits are the event streams' limits (Subscribe and Consume).
func (s *Server) streamLimits() api.SlotLimits {
	a := s.cfg.API
	return s.slotLimits("wail_api_subscriptions", "Subscribe and Consume streams", "max_subscriptions", a.MaxSubscriptions, a.MaxSubscriptionsPerClient)
}

// slotLimits are the limits of a kind of stream (api.<key> and
// api.<key>_per_client), counted in <metric>_refused_total; <metric> is
// the number open.
func (s *Server) slotLimits(metric, what, key string, total, perClient int) api.SlotLimits {
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metric + "_refused_total",
		Help: fmt.Sprintf("%s refused because a limit was reached: total (api.%s) or per_client (api.%s_per_client).", what, key, key),
	}, []string{"limit"})
	open := prometheus.NewGauge(prometheus.GaugeOpts{Name: metric, Help: what + " open."})
	s.registry.MustRegister(refused, open)
	return api.SlotLimits{MaxStreams: total, MaxStreamsPerClient: perClient,
		Refused: func(limit string) { refused.WithLabelValues(limit).Inc() },
		Opened:  func(n int) { open.Set(float64(n)) },
	}
}

// snapshots configures from "snapshot" streams: the store, if it can list
// keys, and the resolvers' group, whose commits tell when a chunk's keys
// can no longer get an older event.
func (s *Server) snapshots() eventbus.Snapshots {
	src, _ := s.store.(eventbus.SnapshotSource) // every store of wail has one
	a := s.cfg.API
	return eventbus.Snapshots{Source: src, ResolverGroup: s.cfg.Resolver.Group, ChunkKeys: a.SnapshotChunkKeys, MaxKeys: a.SnapshotMaxKeys,
		Drifted: s.values.snapshotDrifted}
}
